// Replication rules on the real stack: the run's config (TEST_RULES) keeps
// the sandbox out of southeastasia and sends prod's release tags to
// westeurope only. A push a rule keeps out of a region never lands there; a
// wait on that region ends at once saying so instead of waiting forever;
// and once the rules let it in, a backfill brings it.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ReplicationFailedError, waitForReplication } from '../../api/client';
import { parseRepositoryName, type RepositoryName } from '../../domain/reference';
import type { OutcomeMessage } from '../../domain/subjects';
import { localStackEnv, repoRoot, RULES_PROD, RULES_SANDBOX } from '../support/env';
import { localConfig, tokenOf } from '../support/ferry';
import { buildImage, type OciImage } from '../support/oci-image';
import { restartWorkerWith } from '../support/processes';
import { getManifest, skopeoPull } from '../support/registry';
import { pushBehindRegistry } from '../support/source-writer';

const config = localConfig();
const apiUrl = `http://${config.ingest.host}:${config.ingest.port}`;
const token = tokenOf(config, 'reader');
const run = randomBytes(4).toString('hex');
const sandbox = parseRepositoryName(`${RULES_SANDBOX}/app-${run}`);

const registry = (region: string) => config.regions.find((candidate) => candidate.name === region)!.registryUrl;

/** Pushes a new image as repository:tag into eastus; resolves with the image and the outcome Ferry announced. */
async function push(repository: RepositoryName, tag: string): Promise<{ image: OciImage; outcome: OutcomeMessage }> {
  const image = await buildImage({ layers: [{ size: 20_000 }], tag });
  return { image, outcome: await pushBehindRegistry(config, 'eastus', repository, image) };
}

describe('replication rules', () => {
  it('keeps the sandbox out of southeastasia, and a wait there ends at once saying so', async () => {
    const { outcome } = await push(sandbox, 'v1');
    expect([outcome.succeeded, outcome.failed]).toEqual([['westeurope'], []]);
    expect((await getManifest(registry('southeastasia'), sandbox, 'v1', 'HEAD')).status).toBe(404);
    const status = await fetch(`${apiUrl}/v1/status?repository=${sandbox}&tag=v1`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await status.json()) as { regions: Record<string, unknown>; notReplicatedInto: string[] };
    // (centralus, the registry-API region, takes only it-api/** in this run.)
    expect([Object.keys(body.regions), body.notReplicatedInto]).toEqual([['westeurope'], ['southeastasia', 'centralus']]);

    const started = Date.now();
    const refused = await waitForReplication(`${sandbox}:v1`, { regions: ['westeurope', 'southeastasia'], apiUrl, token, timeoutMs: 60_000 }).catch((error: Error) => error);
    expect(refused).toBeInstanceOf(ReplicationFailedError);
    expect((refused as ReplicationFailedError).status.regions.southeastasia!.state).toBe('excluded');
    expect((refused as Error).message).toMatch(/southeastasia\s+not replicated here by rule/);
    expect(Date.now() - started, 'answered at once, not at the timeout').toBeLessThan(10_000);
    expect((await waitForReplication(`${sandbox}:v1`, { regions: ['westeurope'], apiUrl, token, timeoutMs: 30_000 })).state).toBe('replicated');
  });

  it("sends prod's release tags to westeurope only, and its other tags everywhere", async () => {
    const prod = parseRepositoryName(`${RULES_PROD}/api-${run}`);
    const release = await push(prod, 'v2');
    expect(release.outcome.succeeded).toEqual(['westeurope']);
    const latest = await push(prod, 'latest');
    expect([...latest.outcome.succeeded].sort()).toEqual(['southeastasia', 'westeurope']);
    expect(await skopeoPull(`docker://${new URL(registry('southeastasia')).host}/${prod}:latest`)).toBe(latest.image.manifestDigest);
    expect((await getManifest(registry('southeastasia'), prod, 'v2', 'HEAD')).status).toBe(404);
  });

  it('backfills what the rules let in once they change', async () => {
    // Backfills are planned by the worker: restart it with rules that no longer keep the sandbox out.
    const restore = await restartWorkerWith('rules-changed', (current) => ({
      ...current,
      rules: (current.rules as Array<{ repository: string }>).filter((rule) => !rule.repository.startsWith(RULES_SANDBOX)),
    }));
    try {
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'cli/ferry.ts', 'backfill', '--repository', sandbox], { cwd: repoRoot, env: localStackEnv() });
      expect(stdout).toContain('backfill: 1 of 1 tag(s) replicated, 0 failed');
      expect(await skopeoPull(`docker://${new URL(registry('southeastasia')).host}/${sandbox}:v1`)).toMatch(/^sha256:/);
    } finally {
      await restore();
    }
  });
});
