// Bounded concurrency and single flight: the two helpers every copy runs through.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { copyPartRanges } from '../../activities/blob-copy-paths';
import { SingleFlight } from '../../activities/single-flight';
import { forEachLimited } from '../../support/concurrency';

describe('forEachLimited', () => {
  it('runs every item once, never more than the limit at a time, handing items out in order', async () => {
    let running = 0;
    let most = 0;
    const started: number[] = [];
    await forEachLimited([1, 2, 3, 4, 5, 6, 7], 3, async (item) => {
      started.push(item);
      most = Math.max(most, ++running);
      await sleep(item % 3);
      running--;
    });
    expect(started).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(most).toBe(3);
  });

  it('stops handing out items at the first failure, aborts the running ones, waits for them, and rejects with that failure', async () => {
    const first = new Error('first');
    const started: number[] = [];
    const settled: number[] = [];
    const run = forEachLimited([1, 2, 3, 4, 5], 2, async (item, signal) => {
      started.push(item);
      try {
        if (item === 1) throw first;
        await new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error(`aborted ${item}`)), { once: true }));
      } finally {
        settled.push(item);
      }
    });
    await expect(run).rejects.toBe(first);
    expect(started).toEqual([1, 2]);
    expect(settled.sort()).toEqual([1, 2]);
  });

  it('stops when the caller aborts, and rejects with its reason', async () => {
    const caller = new AbortController();
    const started: number[] = [];
    const run = forEachLimited(
      [1, 2, 3],
      1,
      async (item) => {
        started.push(item);
        caller.abort(new Error('cancelled'));
      },
      caller.signal,
    );
    await expect(run).rejects.toThrow('cancelled');
    expect(started).toEqual([1]);
  });

  it('does nothing for no items, and refuses a limit that is not a positive integer', async () => {
    await forEachLimited([], 4, async () => expect.unreachable());
    await expect(forEachLimited([1], 0, async () => undefined)).rejects.toThrow(RangeError);
  });
});

describe('SingleFlight', () => {
  it('shares one run between concurrent callers of a key, and runs other keys apart', async () => {
    const flights = new SingleFlight<number>();
    let runs = 0;
    const work = async () => {
      runs++;
      await sleep(5);
      return runs;
    };
    const results = await Promise.all([flights.run('a', work), flights.run('a', work), flights.run('b', work)]);
    expect(runs).toBe(2);
    expect(results[0]).toBe(results[1]);
    expect(flights.running('a')).toBe(false);
  });

  it('forgets a failed flight, so the next caller runs afresh', async () => {
    const flights = new SingleFlight<string>();
    await expect(flights.run('k', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(flights.running('k')).toBe(false);
    await expect(flights.run('k', async () => 'fresh')).resolves.toBe('fresh');
  });

  it('idle resolves once the flight settled, or at once when the caller aborts', async () => {
    const flights = new SingleFlight<void>();
    let release!: () => void;
    void flights.run('k', () => new Promise<void>((resolve) => (release = resolve)));
    let idle = false;
    const waiting = flights.idle('k', new AbortController().signal).then(() => (idle = true));
    await sleep(1);
    expect(idle).toBe(false);
    release();
    await waiting;
    expect(flights.running('k')).toBe(false);

    void flights.run('k', () => new Promise<void>(() => undefined));
    await flights.idle('k', AbortSignal.abort());
    expect(flights.running('k')).toBe(true);
  });
});

describe('copyPartRanges', () => {
  const MiB = 1024 * 1024;
  it('cuts contiguous ranges of at least 64 MiB covering every byte', () => {
    const ranges = copyPartRanges(200 * MiB + 1, 16 * MiB);
    expect(ranges.map((range) => range.end - range.start)).toEqual([64 * MiB, 64 * MiB, 64 * MiB, 8 * MiB + 1]);
    expect(ranges.map((range) => range.partNumber)).toEqual([1, 2, 3, 4]);
    ranges.forEach((range, index) => expect(range.start).toBe(index === 0 ? 0 : ranges[index - 1]!.end));
  });

  it('grows the parts to stay within 10,000 of them', () => {
    const size = 1024 * 1024 * MiB; // 1 TiB
    const ranges = copyPartRanges(size, 16 * MiB);
    expect(ranges.length).toBeLessThanOrEqual(10_000);
    expect(ranges.at(-1)!.end).toBe(size);
  });
});
