// Long polls are bounded (api/wait-hub.ts), on the live api: the waiters of
// one reference share one read of the store, a token holding its maximum of
// waits is answered 429 with Retry-After while other tokens still wait, and
// reads stay on their own small pool whatever the number of waiters.
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDigest, parseRepositoryName } from '../../domain/reference';
import { outcomeFilter, type OutcomeMessage } from '../../domain/subjects';
import { SCOPED_PREFIX, SCOPED_TOKEN, WAITS_PER_TOKEN } from '../support/env';
import { bearer, connectStore, localConfig, MessageCollector } from '../support/ferry';
import { buildImage } from '../support/oci-image';
import { notify, pushNotification, writeImageBehindRegistry } from '../support/source-writer';

const config = localConfig();
const api = `http://${config.ingest.host}:${config.ingest.port}`;
const store = connectStore(config);
const collectors: MessageCollector<never>[] = [];
afterAll(async () => {
  await Promise.all(collectors.map((collector) => collector.stop()));
  await store.close();
});

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${api}/metrics`, { headers: bearer(config, 'admin') })).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('waits on one reference', () => {
  it('share one read, are capped per token with 429 and Retry-After, and keep reads on their own pool', async () => {
    const repository = parseRepositoryName(`${SCOPED_PREFIX}/long-poll-${randomBytes(4).toString('hex')}`);
    const query = (token: string, timeout: number) =>
      fetch(`${api}/v1/wait?${new URLSearchParams({ repository, tag: 'v1', regions: 'westeurope,southeastasia', timeout: String(timeout) })}`, { headers: bearer(config, token) });
    const readsBefore = await metric('ferry_wait_reads_total');
    const held = Array.from({ length: WAITS_PER_TOKEN }, () => query(SCOPED_TOKEN, 60));
    await until(`${WAITS_PER_TOKEN} waits held`, async () => (await metric('ferry_waits_held')) >= WAITS_PER_TOKEN);
    // Nothing was pushed yet and nothing changed: every waiter was answered from one read.
    expect(await metric('ferry_wait_reads_total')).toBe(readsBefore + 1);

    const refused = await query(SCOPED_TOKEN, 60);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('2');
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('TOO_MANY_WAITS');
    // Another token still waits.
    const other = await query('reader', 0);
    expect(other.status).toBe(200);
    const connections = await store.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'ferry-api-reads'`);
    expect(connections.rows[0]!.n).toBeLessThanOrEqual(config.ingest.readPoolSize);

    const image = await buildImage({ layers: [{ size: 50_000 }], tag: 'v1' });
    await writeImageBehindRegistry(config, 'eastus', repository, image, null);
    const outcome = await MessageCollector.start<OutcomeMessage>(config.natsUrl, outcomeFilter(repository, parseDigest(image.manifestDigest)));
    collectors.push(outcome as MessageCollector<never>);
    const readsAtPush = await metric('ferry_wait_reads_total');
    expect((await notify(config, 'eastus', pushNotification(repository, image))).status).toBe(202);
    const answers = await Promise.all(held.map(async (response) => (await (await response).json()) as { state: string }));
    expect(answers.map((answer) => answer.state)).toEqual(answers.map(() => 'replicated'));
    // One read per change of the push, for all the waiters together: fewer reads than waiters.
    const reads = (await metric('ferry_wait_reads_total')) - readsAtPush;
    console.log(`${WAITS_PER_TOKEN} waiters answered from ${reads} reads`);
    expect(reads).toBeLessThan(WAITS_PER_TOKEN);
    await outcome.waitFor(1, 60_000);
    await until('the waits released', async () => (await metric('ferry_waits_held')) === 0);
  });
});
