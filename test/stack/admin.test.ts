// What an operator runs without database or Temporal access: the admin
// routes on the live api (api/admin.ts), and `ferry stuck|reconcile|backfill
// --api` as real processes given nothing but the api's URL and FERRY_TOKEN.
// Only an admin token may call them; a refused or bad request starts nothing.
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForReplication } from '../../api/client';
import { parseDigest, parseRepositoryName, parseTag, type RepositoryName } from '../../domain/reference';
import { REPLICATION_WORKFLOW, replicationStartOptions, type ReplicationRequest } from '../../domain/workflow-contract';
import { localStackEnv, repoRoot, SCOPED_TOKEN } from '../support/env';
import { bearer, connectTemporal, localConfig, tokenOf, uniqueRepository } from '../support/ferry';
import { buildImage, type OciImage } from '../support/oci-image';
import { skopeoPull } from '../support/registry';
import { writeImageBehindRegistry } from '../support/source-writer';

const config = localConfig();
const api = `http://${config.ingest.host}:${config.ingest.port}`;
const admin = bearer(config, 'admin');
/** Tokens with every scope but admin: read all, read one team, ingest for one region. */
const NOT_ADMIN = ['reader', SCOPED_TOKEN, 'ingest-eastus'];
/** A task queue no worker polls: a workflow started on it stays running, untouched. */
const UNPOLLED_QUEUE = 'ferry-admin-test-unpolled';
const registryHost = (name: string) => new URL(config.regions.find((region) => region.name === name)!.registryUrl).host;

let temporal: Client;
let closeTemporal: () => Promise<void>;
const fileStartedAt = new Date();
const leftRunning: string[] = [];

beforeAll(async () => {
  ({ client: temporal, close: closeTemporal } = await connectTemporal(config));
});
afterAll(async () => {
  await Promise.all(leftRunning.map((workflowId) => temporal.workflow.getHandle(workflowId).terminate('admin.test.ts is done').catch(() => undefined)));
  await closeTemporal();
});

interface Answer {
  status: number;
  body: any;
  location: string | null;
}

async function call(method: 'GET' | 'POST', path: string, headers: Record<string, string>, body?: unknown): Promise<Answer> {
  const response = await fetch(`${api}${path}`, {
    method,
    headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return { status: response.status, body: await response.json(), location: response.headers.get('location') };
}

/** `ferry <args>` as a real process that knows only the api and a token: no FERRY_CONFIG, no credentials. */
async function ferryThroughApi(token: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { PATH: process.env.PATH!, HOME: process.env.HOME!, FERRY_TOKEN: token };
  return ferry(env, ...args, '--api', api);
}

async function ferry(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'cli/ferry.ts', ...args], { cwd: repoRoot, env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** Reconcile and backfill workflows started since `since`, by id. */
async function controlWorkflowsSince(since: Date): Promise<string[]> {
  const ids: string[] = [];
  const query = `(WorkflowType = 'reconcile' OR WorkflowType = 'backfill') AND StartTime >= '${since.toISOString()}'`;
  for await (const execution of temporal.workflow.list({ query })) ids.push(execution.workflowId);
  return ids;
}

async function imageBehind(region: string, repository: RepositoryName): Promise<OciImage> {
  const image = await buildImage({ layers: [{ size: 120_000 }], tag: 'v1' });
  await writeImageBehindRegistry(config, region, repository, image, null);
  return image;
}

function settle(): Promise<void> {
  // Reconcile leaves alone what is younger than reconcile.settleSeconds: it may still be in flight.
  return new Promise((resolve) => setTimeout(resolve, config.reconcile.settleSeconds * 1000 + 500));
}

const someRepository = parseRepositoryName(uniqueRepository('admin-refused'));
const ROUTES: Array<{ method: 'GET' | 'POST'; path: string; body?: object }> = [
  { method: 'GET', path: '/v1/admin/stuck?olderThan=1s' },
  { method: 'POST', path: '/v1/admin/reconcile', body: { repositories: [someRepository] } },
  { method: 'POST', path: '/v1/admin/backfill', body: { repositories: [someRepository] } },
  { method: 'GET', path: `/v1/admin/runs?workflowId=${encodeURIComponent('reconcile (manual) 2026-01-01T00:00:00.000Z')}` },
];

describe('the admin routes', () => {
  it('are documented as needing an admin token', async () => {
    const document = (await call('GET', '/v1/openapi.json', {})).body as { paths: Record<string, Record<string, { description?: string; security?: unknown }>> };
    for (const { method, path } of ROUTES) {
      const operation = document.paths[path.split('?')[0]!]?.[method.toLowerCase()];
      expect(operation, `${method} ${path}`).toBeDefined();
      expect(operation!.description).toBe('Needs a token with scope admin.');
      expect(operation!.security).toEqual([{ bearer: [] }]);
    }
  });

  it('refuse every token but admin, 401 without one, and start nothing', async () => {
    for (const route of ROUTES) {
      const anonymous = await call(route.method, route.path, {}, route.body);
      expect([route.path, anonymous.status, anonymous.body.error.code]).toEqual([route.path, 401, 'UNAUTHORIZED']);
      for (const name of NOT_ADMIN) {
        const refused = await call(route.method, route.path, bearer(config, name), route.body);
        expect([route.path, name, refused.status, refused.body.error]).toEqual([route.path, name, 403, { code: 'FORBIDDEN', message: `token "${name}" may not use admin routes` }]);
      }
    }
    const cli = await ferryThroughApi(tokenOf(config, 'reader'), 'reconcile', '--repository', someRepository);
    expect([cli.code, cli.stderr.trim()]).toEqual([2, 'ferry reconcile: token "reader" may not use admin routes']);
    expect(await controlWorkflowsSince(fileStartedAt)).toEqual([]);
  });

  it('answer a bad request with 400 and Ferry\'s error shape, and start nothing', async () => {
    const refusals: Array<[method: 'GET' | 'POST', path: string, body: unknown, code: string]> = [
      ['POST', '/v1/admin/reconcile', { repositories: ['Team/App'] }, 'INVALID_REFERENCE'],
      ['POST', '/v1/admin/reconcile', { repositories: [] }, 'INVALID_BODY'],
      ['POST', '/v1/admin/reconcile', { repository: [someRepository] }, 'INVALID_BODY'],
      ['POST', '/v1/admin/reconcile', [someRepository], 'INVALID_BODY'],
      ['POST', '/v1/admin/reconcile', '{"repositories": [', 'MALFORMED_ENVELOPE'],
      ['POST', '/v1/admin/backfill', {}, 'INVALID_BODY'],
      ['POST', '/v1/admin/backfill', { all: true, repositories: [someRepository] }, 'INVALID_BODY'],
      ['POST', '/v1/admin/backfill', { all: true, to: ['mars'] }, 'UNKNOWN_REGION'],
      ['POST', '/v1/admin/backfill', { repositories: ['../etc'] }, 'INVALID_REFERENCE'],
      ['GET', '/v1/admin/stuck?olderThan=soon', undefined, 'INVALID_QUERY'],
      ['GET', '/v1/admin/runs', undefined, 'INVALID_QUERY'],
      ['GET', '/v1/admin/runs?workflowId=x&wait=600', undefined, 'INVALID_QUERY'],
    ];
    for (const [method, path, body, code] of refusals) {
      const answer = await call(method, path, admin, body);
      expect([method, path, body, answer.status, answer.body.error?.code], answer.body.error?.message).toEqual([method, path, body, 400, code]);
      expect(answer.body.error.message).toEqual(expect.any(String));
    }
    const cli = await ferryThroughApi(tokenOf(config, 'admin'), 'backfill', '--all', '--to', 'mars');
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('ferry backfill: unknown region(s) mars; Ferry knows eastus, westeurope, southeastasia');
    expect(await controlWorkflowsSince(fileStartedAt)).toEqual([]);
  });
});

describe('with an admin token', () => {
  it('GET /v1/admin/stuck reports a replication that is not moving, as `ferry stuck` prints it straight from Temporal', async () => {
    // A replication whose workflow no worker will ever pick up: started on a queue nobody polls, observed an hour ago.
    const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
    const request: ReplicationRequest = {
      kind: 'push',
      sourceRegion: 'eastus',
      repository: parseRepositoryName(uniqueRepository('admin-stuck')),
      tag: parseTag('v1'),
      digest: parseDigest(`sha256:${'a'.repeat(64)}`),
      occurredAt: hourAgo,
      observedAt: hourAgo,
      replicationId: 2_000_000_000 + randomInt(100_000_000),
      targetRegions: ['westeurope'],
      blobConcurrency: 1,
    };
    const { workflowId } = await temporal.workflow.start(REPLICATION_WORKFLOW, { ...replicationStartOptions(request), taskQueue: UNPOLLED_QUEUE, args: [request] });
    leftRunning.push(workflowId);
    await new Promise((resolve) => setTimeout(resolve, 1500));

    const answer = await call('GET', '/v1/admin/stuck?olderThan=1s', admin);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ olderThanMs: 1000, now: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    const ours = (answer.body.replications as Array<{ workflowId: string }>).find((replication) => replication.workflowId === workflowId);
    expect(ours).toMatchObject({
      reference: `${request.repository}:v1@${request.digest}`,
      phase: 'replicate',
      pendingRegions: [],
      regions: [{ region: 'control', workflowId, activities: [], note: expect.stringContaining('a workflow task waits for a worker') }],
    });

    // The CLI through the api prints what it prints straight from Temporal (ages and times apart).
    const throughApi = await ferryThroughApi(tokenOf(config, 'admin'), 'stuck', '--older-than', '1s');
    const direct = await ferry(localStackEnv(), 'stuck', '--older-than', '1s');
    expect([throughApi.code, throughApi.stderr]).toEqual([0, '']);
    expect(direct.code).toBe(0);
    const blockOf = (stdout: string) => {
      const lines = stdout.split('\n');
      const start = lines.indexOf(workflowId);
      const end = lines.indexOf('', start);
      return lines
        .slice(start, end === -1 ? undefined : end)
        .map((line) => line.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, '<time>').replace(/(\d+[dhms] ?)+/g, '<age> '));
    };
    console.log(`$ ferry stuck --older-than 1s --api ${api}\n${blockOf(throughApi.stdout).join('\n')}`);
    expect(blockOf(throughApi.stdout)).toEqual(blockOf(direct.stdout));
    expect(blockOf(throughApi.stdout)).toContainEqual(expect.stringMatching(/^ {2}stuck on control: phase replicate, no progress for /));
  });

  it('POST /v1/admin/reconcile repairs a tag Ferry never heard of and answers the report; the CLI reconciles through the api', async () => {
    const repository = parseRepositoryName(uniqueRepository('admin-reconcile'));
    const image = await imageBehind('eastus', repository);
    await settle();

    const answer = await call('POST', '/v1/admin/reconcile', admin, { repositories: [repository] });
    expect([answer.status, answer.body.status, answer.body.failure]).toEqual([200, 'completed', null]);
    expect(answer.body).toMatchObject({ kind: 'reconcile', workflowId: expect.stringMatching(/^reconcile \(manual\) /), location: expect.stringMatching(/^\/v1\/admin\/runs\?workflowId=/) });
    expect(answer.body.report).toEqual({
      drifts: 1,
      repaired: [expect.objectContaining({ kind: 'push', region: 'eastus', repository, tag: 'v1', digest: image.manifestDigest, replicationId: expect.any(Number) })],
    });
    // The run stays readable at its location, and a replication it started is not a run.
    const again = await call('GET', answer.body.location, admin);
    expect([again.status, again.body.report]).toEqual([200, answer.body.report]);
    const replication = await call('GET', `/v1/admin/runs?workflowId=${encodeURIComponent(answer.body.report.repaired[0].workflowId)}`, admin);
    expect([replication.status, replication.body.error.code]).toEqual([404, 'NOT_FOUND']);

    const done = await waitForReplication(`${repository}:v1`, { regions: ['westeurope', 'southeastasia'], apiUrl: api, token: tokenOf(config, 'reader'), timeoutMs: 90_000 });
    expect(done.state).toBe('replicated');
    expect(await skopeoPull(`docker://${registryHost('southeastasia')}/${repository}:v1`)).toBe(image.manifestDigest);
    const cli = await ferryThroughApi(tokenOf(config, 'admin'), 'reconcile', '--repository', repository);
    expect([cli.code, cli.stderr, cli.stdout.trim()]).toEqual([0, '', 'reconcile: 0 drift(s) found']);
    expect((await ferry(localStackEnv(), 'reconcile', '--repository', repository)).stdout.trim()).toBe('reconcile: 0 drift(s) found');
  });

  it('GET /v1/admin/runs holds a running run up to `wait`, answers 202 with its location, then its failure once terminated', async () => {
    const { workflowId } = await temporal.workflow.start('reconcile', { workflowId: `reconcile (admin test) ${Date.now()}`, taskQueue: UNPOLLED_QUEUE, args: [{ repositories: [someRepository] }] });
    leftRunning.push(workflowId);
    const location = `/v1/admin/runs?${new URLSearchParams({ workflowId })}`;

    const asked = Date.now();
    const running = await call('GET', `${location}&wait=2`, admin);
    expect(Date.now() - asked).toBeGreaterThanOrEqual(1900);
    expect([running.status, running.location, running.body]).toEqual([202, location, { kind: 'reconcile', workflowId, status: 'running', report: null, failure: null, location }]);
    expect((await call('GET', location, admin)).status).toBe(202);

    await temporal.workflow.getHandle(workflowId).terminate('stopped by admin.test.ts');
    const failed = await call('GET', location, admin);
    expect([failed.status, failed.body.status, failed.body.report, failed.location]).toEqual([200, 'failed', null, null]);
    expect(failed.body.failure).toContain('stopped by admin.test.ts');
    const unknown = await call('GET', `/v1/admin/runs?workflowId=${encodeURIComponent('reconcile (manual) 1999-01-01T00:00:00.000Z')}`, admin);
    expect([unknown.status, unknown.body.error.code]).toEqual([404, 'NOT_FOUND']);
  });

  it('POST /v1/admin/backfill starts a backfill that fills only the regions asked; the CLI backfills the rest through the api', async () => {
    const repository = parseRepositoryName(uniqueRepository('admin-backfill'));
    const image = await imageBehind('eastus', repository);

    const started = await call('POST', '/v1/admin/backfill', admin, { repositories: [repository], to: ['southeastasia'] });
    expect([started.status, started.location]).toEqual([202, started.body.location]);
    expect(started.body).toMatchObject({
      kind: 'backfill',
      workflowId: expect.stringMatching(new RegExp(`^backfill ${repository} → southeastasia `)),
      status: 'running',
      scope: { repositories: [repository], to: ['southeastasia'] },
    });
    let run = started.body;
    while (run.status === 'running') run = (await call('GET', `${started.body.location}&wait=30`, admin)).body;
    expect([run.status, run.report]).toEqual(['completed', { planned: 1, alreadyPresent: 0, replicated: 1, failed: [], remaining: 0 }]);
    expect(await skopeoPull(`docker://${registryHost('southeastasia')}/${repository}:v1`)).toBe(image.manifestDigest);
    await expect(skopeoPull(`docker://${registryHost('westeurope')}/${repository}:v1`), 'westeurope was not asked').rejects.toThrow();

    const cli = await ferryThroughApi(tokenOf(config, 'admin'), 'backfill', '--repository', repository);
    expect([cli.code, cli.stderr]).toEqual([0, '']);
    expect(cli.stdout).toMatch(new RegExp(`^backfill started: workflow "backfill ${repository} [^"]+" \\(follow it in the Temporal UI\\)$`, 'm'));
    expect(cli.stdout).toContain('backfill: 1 of 1 tag(s) replicated, 0 failed, 0 already present everywhere');
    expect(await skopeoPull(`docker://${registryHost('westeurope')}/${repository}:v1`)).toBe(image.manifestDigest);
  });
});
