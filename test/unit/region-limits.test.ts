// Per-region limits: the pacer's send times, and copy slots per region.
import { describe, expect, it } from 'vitest';
import { Pacer, RegionLimits } from '../../activities/region-limits';

describe('Pacer', () => {
  it('starts each request once the bytes before it were sent at the rate, saving no burst while idle', async () => {
    let now = 0;
    const waits: number[] = [];
    const pacer = new Pacer(20_000_000, { now: () => now, wait: async (ms) => waits.push(ms) });
    // Three 16 MB parts at 20 MB/s: at 0, 0.8 s and 1.6 s.
    for (let part = 0; part < 3; part++) await pacer.reserve(16_000_000);
    expect(waits).toEqual([800, 1600]);
    // 1 GiB in 64 MiB parts: the last part may start 15 parts' time in, about 50 s.
    now = 10_000;
    waits.length = 0;
    for (let part = 0; part < 16; part++) await pacer.reserve(64 * 1024 * 1024);
    expect(waits.at(-1)! / 1000).toBeCloseTo((15 * 64 * 1024 * 1024) / 20_000_000, 3);
    // After an idle minute the next request goes at once.
    now += 120_000;
    waits.length = 0;
    await pacer.reserve(1);
    expect(waits).toEqual([]);
  });

  it('refuses a rate that is not positive', () => {
    expect(() => new Pacer(0)).toThrow(RangeError);
  });
});

describe('RegionLimits', () => {
  it("holds a region's copies to its slots and leaves unlimited regions alone", async () => {
    const regions = [{ name: 'westeurope' }, { name: 'southeastasia', limits: { blobCopies: 2 } }];
    const limits = new RegionLimits(regions);
    const first = await limits.copySlot('southeastasia');
    await limits.copySlot('southeastasia');
    let third = false;
    const waiting = limits.copySlot('southeastasia').then(() => (third = true));
    for (let index = 0; index < 10; index++) await limits.copySlot('westeurope');
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(third).toBe(false);
    first();
    await waiting;
    expect(third).toBe(true);
  });
});
