// Who may read what, on the live api: the run's tokens file (global setup)
// holds a read token scoped to one team's prefix. It sees and waits on that
// team's repositories only; another team's are refused or filtered out with
// the same answer whether they exist or not; every route but /healthz and
// /v1/openapi.json needs a token; and the CLI and client wait with one.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForReplication, WaitRequestError } from '../../api/client';
import { parseRepositoryName, type RepositoryName } from '../../domain/reference';
import { localStackEnv, repoRoot, SCOPED_PREFIX, SCOPED_TOKEN } from '../support/env';
import { bearer, localConfig, tokenOf } from '../support/ferry';
import { buildImage, type OciImage } from '../support/oci-image';
import { pushBehindRegistry, pushNotification } from '../support/source-writer';

const config = localConfig();
const api = `http://${config.ingest.host}:${config.ingest.port}`;
const team = bearer(config, SCOPED_TOKEN);
const run = randomBytes(4).toString('hex');
/** Under the scoped token's prefix, and outside it (a sibling whose name starts the same). */
const ours = parseRepositoryName(`${SCOPED_PREFIX}/app-${run}`);
const theirs = parseRepositoryName(`${SCOPED_PREFIX}-other/app-${run}`);
const pushed = new Map<RepositoryName, { image: OciImage; replicationId: number }>();
let scratch: string;

async function get(path: string, headers: Record<string, string> = team): Promise<{ status: number; body: any }> {
  const response = await fetch(`${api}${path}`, { headers });
  return { status: response.status, body: await response.json() };
}

async function push(repository: RepositoryName): Promise<void> {
  const image = await buildImage({ layers: [{ size: 30_000 }], tag: 'v1' });
  const outcome = await pushBehindRegistry(config, 'eastus', repository, image, 60_000);
  pushed.set(repository, { image, replicationId: outcome.replicationId });
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'ferry-auth-'));
  await Promise.all([push(ours), push(theirs)]);
}, 120_000);
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('a read token scoped to a prefix', () => {
  it("reads its team's status and events, and is refused another team's alike whether pushed or not", async () => {
    const own = await get(`/v1/status?repository=${ours}&tag=v1`);
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ repository: ours, digest: pushed.get(ours)!.image.manifestDigest });
    expect((await get(`/v1/replications/${own.body.replicationId}/events`)).status).toBe(200);

    const other = await get(`/v1/status?repository=${theirs}&tag=v1`);
    const never = await get(`/v1/status?repository=${theirs}-never&tag=v1`);
    expect(other.status).toBe(403);
    expect(other.body.error.code).toBe('FORBIDDEN');
    // Nothing says whether the other team's repository exists.
    expect(never.body.error.message.replace(`${theirs}-never`, theirs)).toBe(other.body.error.message);
    expect(JSON.stringify(other.body)).not.toContain(pushed.get(theirs)!.image.manifestDigest);
    // Walking ids finds another team's replication no more than one that does not exist.
    const walked = await get(`/v1/replications/${pushed.get(theirs)!.replicationId}/events`);
    const missing = await get('/v1/replications/999999999/events');
    expect([walked.status, walked.body.error.code]).toEqual([404, 'NOT_FOUND']);
    expect(walked.body.error.message.replace(/\d+/, 'N')).toBe(missing.body.error.message.replace(/\d+/, 'N'));
    // The reader and admin tokens see both.
    for (const name of ['reader', 'admin']) expect((await get(`/v1/status?repository=${theirs}&tag=v1`, bearer(config, name))).status, name).toBe(200);
  });

  it('lists only its prefix, and refuses a list filtered on another team', async () => {
    const listed = await get('/v1/replications?limit=500');
    expect(listed.status).toBe(200);
    const repositories = new Set((listed.body.items as { repository: string }[]).map((item) => item.repository));
    expect(repositories.has(ours)).toBe(true);
    expect([...repositories].filter((repository) => repository !== SCOPED_PREFIX && !repository.startsWith(`${SCOPED_PREFIX}/`))).toEqual([]);
    const everything = await get('/v1/replications?limit=500', bearer(config, 'reader'));
    expect((everything.body.items as { repository: string }[]).some((item) => item.repository === theirs)).toBe(true);
    expect((await get(`/v1/replications?repository=${theirs}`)).status).toBe(403);
  });

  it("waits on its team's tags with the client and the CLI, and is refused another team's", async () => {
    const token = tokenOf(config, SCOPED_TOKEN);
    const done = await waitForReplication(`${ours}:v1`, { regions: ['westeurope', 'southeastasia'], apiUrl: api, token, timeoutMs: 30_000 });
    expect(done.state).toBe('replicated');
    await expect(waitForReplication(`${theirs}:v1`, { regions: ['westeurope'], apiUrl: api, token, timeoutMs: 5_000 })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(waitForReplication(`${ours}:v1`, { regions: ['westeurope'], apiUrl: api, token: 'not-a-token', timeoutMs: 5_000 })).rejects.toBeInstanceOf(WaitRequestError);

    const tokenFile = join(scratch, 'token');
    await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
    const { FERRY_TOKEN: _none, ...env } = localStackEnv();
    const cli = (...args: string[]) => promisify(execFile)(process.execPath, ['--import', 'tsx', 'cli/ferry.ts', 'wait', ...args, '--token-file', tokenFile, '--timeout', '30s'], { cwd: repoRoot, env });
    expect((await cli(`${ours}:v1`, '--region', 'westeurope,southeastasia')).stdout).toContain(`${ours}:v1: replicated in westeurope, southeastasia`);
    await expect(cli(`${theirs}:v1`, '--region', 'westeurope')).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining(`may not read ${theirs}`) });
  });
});

describe('every route but the public two', () => {
  it('answers 401 without a token, 403 with a token lacking the scope, before reading a body', async () => {
    const routes = [
      `/v1/status?repository=${ours}&tag=v1`,
      '/v1/replications',
      `/v1/replications/${pushed.get(ours)!.replicationId}/events`,
      `/v1/wait?repository=${ours}&tag=v1&regions=westeurope&timeout=0`,
      '/metrics',
    ];
    for (const path of routes) {
      for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }] as Record<string, string>[]) {
        const response = await fetch(`${api}${path}`, { headers });
        expect(response.status, `${path} ${JSON.stringify(headers)}`).toBe(401);
        expect(response.headers.get('www-authenticate')).toBe('Bearer realm="ferry"');
        expect(((await response.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
      }
    }
    // Ingest tokens read nothing; a read token scrapes no metrics; metrics need metrics or admin.
    for (const [path, name] of [[routes[0]!, 'ingest-eastus'], ['/metrics', SCOPED_TOKEN], ['/metrics', 'reader']] as const) {
      const response = await get(path, bearer(config, name));
      expect([path, name, response.status, response.body.error.code]).toEqual([path, name, 403, 'FORBIDDEN']);
    }
    expect((await fetch(`${api}/metrics`, { headers: bearer(config, 'admin') })).status).toBe(200);
    for (const path of ['/healthz', '/v1/openapi.json']) expect((await fetch(`${api}${path}`)).status, path).toBe(200);
    // A scoped read token may not send notifications, not even for a repository it may read.
    const image = pushed.get(ours)!.image;
    const refused = await fetch(`${api}/v1/notifications/distribution/eastus`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...team },
      body: pushNotification(ours, { ...image, tag: 'v2' }),
    });
    expect(refused.status).toBe(403);
  });
});
