// Waiting for a region, the way a deploy pipeline does: `ferry wait` as a
// real process, the exported TypeScript client, and the HTTP long poll behind
// both, against real pushes. Covers a wait started before the push, after
// completion, a timeout and a failed replication, and a tag whose newest push
// was superseded in a region: the wait follows the change that holds the tag.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForReplication, WaitTimeoutError, type WaitResult } from '../../api/client';
import { parseDigest, parseRepositoryName } from '../../domain/reference';
import type { EventStore } from '../../store/event-store';
import { localStackEnv, repoRoot } from '../support/env';
import type { RegionMessage, OutcomeMessage } from '../../domain/subjects';
import { bearer, connectStore, localConfig, MessageCollector, tokenOf, uniqueRepository } from '../support/ferry';
import { buildImage } from '../support/oci-image';
import { getManifest, skopeoCopy, skopeoPull } from '../support/registry';
import { notify, pushNotification, writeImageBehindRegistry } from '../support/source-writer';

const config = localConfig();
const reader = bearer(config, 'reader');
const api = `http://${config.ingest.host}:${config.ingest.port}`;
const registryHost = (name: string) => new URL(config.regions.find((region) => region.name === name)!.registryUrl).host;
const TARGETS = ['westeurope', 'southeastasia'];

let store: EventStore;
beforeAll(() => {
  store = connectStore(config);
});
afterAll(async () => {
  await store.close();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** When the process exited. */
  exitedAt: number;
}

/** Runs `ferry wait …`; with `tty`, under script(1) so it sees a terminal, as a person would. */
function ferryWait(args: string[], options: { tty?: boolean } = {}): Promise<Run> {
  const command = [process.execPath, '--import', 'tsx', 'cli/ferry.ts', 'wait', ...args];
  const [file, argv] = options.tty ? ['script', ['-qefc', command.map((part) => `'${part}'`).join(' '), '/dev/null']] : [command[0]!, command.slice(1)];
  return new Promise((resolve, reject) => {
    const child = spawn(file as string, argv as string[], { cwd: repoRoot, env: { ...localStackEnv(), FERRY_TOKEN: tokenOf(config, 'reader') } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr, exitedAt: Date.now() }));
  });
}

/** Where the status API says the newest push of repository:tag stands, region by region. */
async function regionStates(repository: string, tag: string): Promise<Record<string, string>> {
  const response = await fetch(`${api}/v1/status?${new URLSearchParams({ repository, tag })}`, { headers: reader });
  const body = (await response.json()) as { regions: Record<string, { state: string }> };
  return Object.fromEntries(Object.entries(body.regions).map(([region, status]) => [region, status.state]));
}

async function pushToEastus(repository: string, tag: string, layerBytes: number) {
  const image = await buildImage({ layers: [{ size: layerBytes }], tag });
  await skopeoCopy(image.reference, `docker://${registryHost('eastus')}/${repository}:${tag}`);
  return image;
}

describe('ferry wait', () => {
  it('started before the push, exits 0 once every region named is replicated, and the image pulls there', async () => {
    const repository = uniqueRepository('wait-before');
    const waiting = ferryWait([`${repository}:v1`, '--region', TARGETS.join(','), '--timeout', '2m']);
    // Give the command time to be waiting on a reference nobody has pushed yet.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const image = await pushToEastus(repository, 'v1', 2_000_000);
    const run = await waiting;
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe(`${repository}:v1: replicated in westeurope, southeastasia`);
    // The command exited only after Ferry recorded both regions replicated…
    expect(await regionStates(repository, 'v1')).toEqual({ westeurope: 'replicated', southeastasia: 'replicated' });
    // …and what it promised holds: a pull from each region gets the pushed digest.
    for (const region of TARGETS) {
      expect(await skopeoPull(`docker://${registryHost(region)}/${repository}:v1`)).toBe(image.manifestDigest);
    }
  });

  it('after completion, returns at once: the CLI by digest, and the TypeScript client by tag', async () => {
    const repository = uniqueRepository('wait-after');
    const image = await pushToEastus(repository, 'v1', 300_000);
    const first = await waitForReplication(`${repository}:v1`, { regions: TARGETS, apiUrl: api, token: tokenOf(config, 'reader'), timeoutMs: 90_000 });
    expect(first.state).toBe('replicated');

    const byDigest = await ferryWait([`${repository}@${image.manifestDigest}`, '--region', 'westeurope', '--region', 'southeastasia', '--timeout', '10s']);
    expect(byDigest.code).toBe(0);
    const seen: WaitResult[] = [];
    const again = await waitForReplication(`${repository}:v1`, { regions: [...TARGETS, 'eastus'], apiUrl: api, token: tokenOf(config, 'reader'), timeoutMs: 10_000, onProgress: (s) => seen.push(s) });
    expect(again.state).toBe('replicated');
    expect(seen).toHaveLength(1);
    expect(again.regions.eastus).toMatchObject({ state: 'replicated', lagSeconds: 0 });
    for (const region of TARGETS) {
      expect(again.regions[region]).toMatchObject({ state: 'replicated', replicationId: first.regions[region]!.replicationId });
      expect(again.regions[region]!.lagSeconds).toBeGreaterThan(0);
    }
  });

  it('times out with exit code 124 and says where each region stands', async () => {
    const repository = uniqueRepository('wait-timeout');
    const run = await ferryWait([`${repository}:never`, '--region', 'westeurope', '--timeout', '3s']);
    expect(run.code).toBe(124);
    expect(run.stderr).toContain(`ferry wait: ${repository}:never was not replicated within 3 s`);
    expect(run.stderr).toContain('westeurope  waiting for the push');
    await expect(waitForReplication(`${repository}:never`, { regions: ['westeurope'], apiUrl: api, token: tokenOf(config, 'reader'), timeoutMs: 1500 })).rejects.toBeInstanceOf(WaitTimeoutError);
  });

  it('fails with exit code 1 and the reason when a region fails for good', async () => {
    const repository = parseRepositoryName(uniqueRepository('wait-failed'));
    const image = await buildImage({ layers: [{ size: 100_000 }], tag: 'v1' });
    await writeImageBehindRegistry(config, 'eastus', repository, image, { corrupt: parseDigest(image.layers[0]!.digest) });
    const waiting = ferryWait([`${repository}:v1`, '--region', TARGETS.join(','), '--timeout', '2m']);
    expect((await notify(config, 'eastus', pushNotification(repository, image))).status).toBe(202);
    const run = await waiting;
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`ferry wait: ${repository}:v1 failed to replicate:`);
    expect(run.stderr).toMatch(/(westeurope|southeastasia) +failed: SourceBlobCorrupt: source blob sha256:[0-9a-f]{64} in eastus is corrupt/);
  });

  it('draws per-region progress on a terminal', async () => {
    const repository = uniqueRepository('wait-tty');
    const waiting = ferryWait([`${repository}:v1`, '--region', TARGETS.join(','), '--timeout', '2m'], { tty: true });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await pushToEastus(repository, 'v1', 40_000_000);
    const run = await waiting;
    expect(run.code).toBe(0);
    // script(1) merges the command's stderr into its output; the last frame shows both regions replicated.
    const frames = run.stdout.split('\x1b[2K').map((line) => line.trim());
    expect(frames).toContain(`${repository}:v1: waiting`);
    expect(frames).toContain(`${repository}:v1: replicated`);
    expect(frames.some((line) => /^westeurope +replicated [\d.]+ s after the push$/.test(line))).toBe(true);
    expect(frames.some((line) => /^southeastasia +replicated [\d.]+ s after the push$/.test(line))).toBe(true);
    console.log(`ferry wait on a terminal:\n${run.stdout.replaceAll('\x1b[2K', '').replace(/\x1b\[\d+A/g, '')}`);
  });
});

describe('a tag whose newest push is superseded in a region', () => {
  const waitNow = async (repository: string, tag: string, regions: string[]) =>
    (await (await fetch(`${api}/v1/wait?${new URLSearchParams({ repository, tag, regions: regions.join(','), timeout: '0' })}`, { headers: reader })).json()) as WaitResult;
  const accepted = async (response: Response) => {
    expect(response.status, await response.clone().text()).toBe(202);
    return ((await response.json()) as { accepted: Array<{ replicationId: number }> }).accepted[0]!.replicationId;
  };
  const collectors: MessageCollector<RegionMessage | OutcomeMessage>[] = [];
  afterAll(() => Promise.all(collectors.map((collector) => collector.stop())));
  const listen = async (filter: string) => {
    const collector = await MessageCollector.start<RegionMessage | OutcomeMessage>(config.natsUrl, filter);
    collectors.push(collector);
    return collector;
  };

  it('follows the later push of the tag from another region, which holds the tag there, and says so', async () => {
    const repository = parseRepositoryName(uniqueRepository('wait-superseded'));
    const [later, earlier] = await Promise.all([buildImage({ layers: [{ size: 20_000 }], tag: 't' }), buildImage({ layers: [{ size: 20_000 }], tag: 't' })]);
    const outcomes = await listen(`ferry.outcome.${repository}.>`);
    const superseded = await listen(`ferry.superseded.eastus.${repository}.>`);
    // Pushed in two regions at once: westeurope's push is the later one, but its notification arrives first.
    await writeImageBehindRegistry(config, 'westeurope', repository, later!, null);
    const laterId = await accepted(await notify(config, 'westeurope', pushNotification(repository, later!, crypto.randomUUID(), new Date(Date.now() + 5_000))));
    await outcomes.waitFor(1, 90_000);
    await writeImageBehindRegistry(config, 'southeastasia', repository, earlier!, null);
    const earlierId = await accepted(await notify(config, 'southeastasia', pushNotification(repository, earlier!, crypto.randomUUID(), new Date())));
    await outcomes.waitFor(2, 90_000);

    // The newest push observed is southeastasia's, but eastus's tag serves westeurope's.
    expect((await getManifest(config.regions.find((region) => region.name === 'eastus')!.registryUrl, repository, 't')).digest).toBe(later!.manifestDigest);
    const status = (await (await fetch(`${api}/v1/status?${new URLSearchParams({ repository, tag: 't' })}`, { headers: reader })).json()) as { replicationId: number; regions: Record<string, { state: string; supersededBy: number | null }> };
    expect(status.replicationId).toBe(earlierId);
    expect(status.regions.eastus).toMatchObject({ state: 'superseded', supersededBy: laterId });
    const [message] = await superseded.waitFor(1, 10_000);
    expect(message!.subject).toBe(`ferry.superseded.eastus.${repository}.t.${earlier!.manifestDigest.slice('sha256:'.length)}`);
    expect(message!.body).toMatchObject({ kind: 'superseded', replicationId: earlierId, supersededBy: laterId });

    const waited = await waitNow(repository, 't', ['eastus']);
    expect(waited.state).toBe('replicated');
    expect(waited.regions.eastus).toMatchObject({ state: 'replicated', replicationId: laterId, via: [earlierId] });
    const run = await ferryWait([`${repository}:t`, '--region', 'eastus', '--timeout', '10s']);
    expect(run.code).toBe(0);
  });

  it("waits, instead of exiting 0, while the source's tag moved on to a push not observed yet, then follows that push", async () => {
    const repository = parseRepositoryName(uniqueRepository('wait-moved-on'));
    const [first, second] = await Promise.all([buildImage({ layers: [{ size: 20_000 }], tag: 'u' }), buildImage({ layers: [{ size: 20_000 }], tag: 'u' })]);
    const outcomes = await listen(`ferry.outcome.${repository}.>`);
    // eastus took two pushes of u; the notification of the second is late.
    await writeImageBehindRegistry(config, 'eastus', repository, first!, null);
    await writeImageBehindRegistry(config, 'eastus', repository, second!, null);
    const firstId = await accepted(await notify(config, 'eastus', pushNotification(repository, first!, crypto.randomUUID(), new Date(Date.now() - 1_000))));
    await outcomes.waitFor(1, 90_000);
    const meanwhile = await waitNow(repository, 'u', TARGETS);
    expect(meanwhile.state, 'the tag serves neither push in the targets yet').toBe('waiting');
    for (const region of TARGETS) expect(meanwhile.regions[region]).toMatchObject({ state: 'superseded', replicationId: firstId, supersededBy: null });

    const waiting = ferryWait([`${repository}:u`, '--region', TARGETS.join(','), '--timeout', '2m']);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const secondId = await accepted(await notify(config, 'eastus', pushNotification(repository, second!)));
    const run = await waiting;
    expect(run.code, run.stderr).toBe(0);
    const done = await waitNow(repository, 'u', TARGETS);
    for (const region of TARGETS) {
      expect(done.regions[region]).toMatchObject({ state: 'replicated', replicationId: secondId });
      expect(await skopeoPull(`docker://${registryHost(region)}/${repository}:u`)).toBe(second!.manifestDigest);
    }
  });
});

describe('GET /v1/wait', () => {
  const waitUrl = (repository: string, extra: Record<string, string>) => `${api}/v1/wait?${new URLSearchParams({ repository, tag: 'v1', regions: 'westeurope', ...extra })}`;

  it('holds the request while nothing changes, then answers the current status', async () => {
    const repository = uniqueRepository('long-poll');
    const query = (extra: Record<string, string>) => waitUrl(repository, extra);
    const first = (await (await fetch(query({ timeout: '0' }), { headers: reader })).json()) as WaitResult;
    expect(first).toMatchObject({ reference: `${repository}:v1`, state: 'waiting', regions: { westeurope: { state: 'unobserved' } } });
    const began = Date.now();
    const held = (await (await fetch(query({ timeout: '2', after: first.version }), { headers: reader })).json()) as WaitResult;
    expect(Date.now() - began).toBeGreaterThanOrEqual(1900);
    expect(held.version).toBe(first.version);
  });

  it('wakes a held request when the push is observed', async () => {
    const repository = uniqueRepository('long-poll-wake');
    const query = (extra: Record<string, string>) => waitUrl(repository, extra);
    const first = (await (await fetch(query({ timeout: '0' }), { headers: reader })).json()) as WaitResult;
    expect(first.state).toBe('waiting');
    const held = fetch(query({ timeout: '60', after: first.version }), { headers: reader }).then((response) => response.json() as Promise<WaitResult>);
    await pushToEastus(repository, 'v1', 100_000);
    const woken = await held;
    expect(woken.version).not.toBe(first.version);
    expect(woken.regions.westeurope!.state).not.toBe('unobserved');
  });

  it.each([
    [{ tag: 'v1', regions: 'mars' }, 'UNKNOWN_REGION'],
    [{ tag: 'v1' }, 'INVALID_QUERY'],
    [{ regions: 'westeurope' }, 'INVALID_QUERY'],
    [{ tag: 'v1', regions: 'westeurope', timeout: '600' }, 'INVALID_QUERY'],
    [{ tag: 'a/b', regions: 'westeurope' }, 'INVALID_REFERENCE'],
  ])('refuses %j with 400 %s', async (params, code) => {
    const response = await fetch(`${api}/v1/wait?${new URLSearchParams({ repository: 'team/app', ...params })}`, { headers: reader });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe(code);
  });

  it('the CLI refuses a bad reference or region with exit code 2, before waiting', async () => {
    const badReference = await ferryWait(['Team/App:v1', '--region', 'westeurope']);
    expect(badReference.code).toBe(2);
    expect(badReference.stderr).toContain('invalid repository "Team/App"');
    const badRegion = await ferryWait(['team/app:v1', '--region', 'mars']);
    expect(badRegion.code).toBe(2);
    expect(badRegion.stderr).toContain('unknown region(s) mars');
  });
});
