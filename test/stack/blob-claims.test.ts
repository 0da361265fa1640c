// The blob claim (store/blob-claims.ts) on the run's real Postgres: one
// holder at a time, renewed while held, taken over once its holder stops
// renewing (as a killed worker does), and free again once released.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobClaims } from '../../store/blob-claims';
import type { EventStore } from '../../store/event-store';
import { connectStore } from '../support/ferry';

const LEASE_SECONDS = 3;
let store: EventStore;

beforeAll(() => {
  store = connectStore();
});
afterAll(async () => {
  await store.close();
});

const digest = () => `sha256:${randomBytes(32).toString('hex')}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a blob claim', () => {
  it('has one holder at a time, renewed while held and free once released', async () => {
    const [first, second] = [new BlobClaims(store, LEASE_SECONDS, 'host-a/1'), new BlobClaims(store, LEASE_SECONDS, 'host-b/2')];
    const blob = digest();
    const held = await first.take('westeurope', blob);
    expect(held?.holder).toMatch(/^host-a\/1\//);
    expect(held?.first, 'nobody claimed this blob before').toBe(true);
    expect(await second.take('westeurope', blob), 'a second worker waits').toBeNull();
    expect(await second.take('southeastasia', blob), 'another region is another claim').not.toBeNull();
    // Renewed past its lease.
    await sleep(LEASE_SECONDS * 1000 + 1500);
    expect(held!.held).toBe(true);
    expect(await second.take('westeurope', blob), 'still held after its first lease ran out').toBeNull();

    const waiting = second.released('westeurope', blob, AbortSignal.timeout(10_000));
    await held!.release();
    await waiting;
    const next = await second.take('westeurope', blob);
    expect(next?.holder).toMatch(/^host-b\/2\//);
    // The released claim stayed: its copy may have finished, so this holder must look again before copying.
    expect(next?.first, 'a copy may have finished since the caller looked').toBe(false);
    const row = await store.pool.query(`SELECT taken_over FROM blob_claims WHERE region = 'westeurope' AND digest = $1`, [blob]);
    expect(row.rows[0].taken_over, 'a released claim is not a taken-over one').toBeNull();
    await next!.release();
  }, 20_000);

  it('is taken over once its holder stops renewing, and the old holder learns it lost it', async () => {
    const [dying, survivor] = [new BlobClaims(store, LEASE_SECONDS, 'host-a/1'), new BlobClaims(store, LEASE_SECONDS, 'host-b/2')];
    const blob = digest();
    // A holder that stops renewing: its lease row as a killed worker leaves it.
    const dead = await dying.take('westeurope', blob);
    await store.pool.query(`UPDATE blob_claims SET holder = 'host-a/1/killed' WHERE digest = $1`, [blob]);
    const started = Date.now();
    await survivor.released('westeurope', blob, AbortSignal.timeout(LEASE_SECONDS * 1000 + 5000));
    expect(Date.now() - started, 'waited out the lease').toBeGreaterThan((LEASE_SECONDS * 1000) / 2);
    const taken = await survivor.take('westeurope', blob);
    expect(taken).not.toBeNull();
    expect(taken!.first, 'the dead holder may have finished its copy').toBe(false);
    const row = await store.pool.query(`SELECT taken_over FROM blob_claims WHERE digest = $1`, [blob]);
    expect(row.rows[0].taken_over, 'whose lease it took').toBe('host-a/1/killed');
    // The original holder's renewals now find another holder.
    await sleep((LEASE_SECONDS * 1000) / 3 + 1000);
    expect(dead!.held).toBe(false);
    await dead!.release();
    expect(await dying.take('westeurope', blob), "releasing a lost claim leaves the new holder's alone").toBeNull();
    await taken!.release();
  }, 20_000);
});
