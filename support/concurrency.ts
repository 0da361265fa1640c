// Bounded concurrency, the one way Ferry runs a list of jobs a few at a time:
// blob copies in a region, pushes and copies in the bench.

/**
 * Runs `work` for every item, at most `limit` at once, handing items out in
 * order. The first failure stops handing out items and aborts the signal the
 * running jobs got; once they settled, it rejects with that first failure
 * (not the aborts it caused). An aborted `signal` stops it the same way.
 */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T, signal: AbortSignal) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
  const stop = new AbortController();
  const stopped = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length && !stopped.aborted) await work(items[next++]!, stopped);
  };
  const lanes = Array.from({ length: Math.min(limit, items.length) }, () =>
    lane().catch((error: unknown) => {
      if (!stop.signal.aborted) stop.abort(error);
      throw error;
    }),
  );
  await Promise.allSettled(lanes);
  if (stop.signal.aborted) throw stop.signal.reason;
  signal?.throwIfAborted();
}
