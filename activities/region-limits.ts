// Per-region limits on what a worker sends into a region (config
// regions[].limits): at most `blobCopies` blob copies at once, and at most
// `bytesPerSecond` blob bytes per second, over every replication this worker
// runs into that region. Bytes are paced where they leave: before each part
// (streamed, or copied server-side) and each single-request blob, so a 10 GB
// layer cannot fill a thin inter-region link. A cap is per worker: N workers
// serving one region's queue send up to N times it (README "Per-region limits").
import { setTimeout as sleep } from 'node:timers/promises';
import type { RegionConfig } from '../domain/config';
import { ByteBudget } from './byte-budget';

/**
 * Hands out send times at `bytesPerSecond`: each request starts once the
 * bytes before it would have been sent at that rate. No burst is saved up
 * while idle, so a copy after a pause is paced from its first part.
 */
export class Pacer {
  private nextFree = -Infinity;

  constructor(
    readonly bytesPerSecond: number,
    private readonly clock: { now: () => number; wait: (ms: number, signal?: AbortSignal) => Promise<unknown> } = {
      now: () => performance.now(),
      wait: (ms, signal) => sleep(ms, undefined, { signal }),
    },
  ) {
    if (!(bytesPerSecond > 0)) throw new RangeError(`a rate must be positive, not ${bytesPerSecond}`);
  }

  /** Resolves when `bytes` may be sent; the time they take at the rate is then reserved. */
  async reserve(bytes: number, signal?: AbortSignal): Promise<void> {
    const now = this.clock.now();
    const start = Math.max(now, this.nextFree);
    this.nextFree = start + (bytes / this.bytesPerSecond) * 1000;
    if (start > now) await this.clock.wait(start - now, signal);
  }
}

export class RegionLimits {
  private readonly copies = new Map<string, ByteBudget>();
  private readonly pacers = new Map<string, Pacer>();

  constructor(regions: ReadonlyArray<Pick<RegionConfig, 'name' | 'limits'>>) {
    for (const region of regions) {
      if (region.limits?.blobCopies !== undefined) this.copies.set(region.name, new ByteBudget(region.limits.blobCopies));
      if (region.limits?.bytesPerSecond !== undefined) this.pacers.set(region.name, new Pacer(region.limits.bytesPerSecond));
    }
  }

  /** Waits for one of `region`'s copy slots; the returned function frees it. */
  async copySlot(region: string, signal?: AbortSignal): Promise<() => void> {
    return (await this.copies.get(region)?.take(1, signal)) ?? (() => undefined);
  }

  /** Resolves when `bytes` may be sent into `region`. */
  async pace(region: string, bytes: number, signal?: AbortSignal): Promise<void> {
    await this.pacers.get(region)?.reserve(bytes, signal);
  }
}
