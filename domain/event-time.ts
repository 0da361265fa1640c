// The time Ferry orders changes of one tag by. A registry's event time is
// only a claim: a clock running ahead, or a forged notification, would date a
// change in the future, where no later push could ever beat it. So the time
// used is the registry's, bounded by Ferry's own observation time plus an
// allowed skew; ties are broken by the replication id (the order Ferry
// recorded them in), so two changes never compare equal.

export interface BoundedTime {
  /** What Ferry orders by: the reported time, or observation + skew when that is earlier. */
  occurredAt: string;
  /** The time the registry reported, when it was later than allowed; null when used as is. */
  reportedAt: string | null;
}

export function boundedEventTime(reported: string, observedAt: Date, maxSkewSeconds: number): BoundedTime {
  const reportedMs = Date.parse(reported);
  if (Number.isNaN(reportedMs)) throw new RangeError(`not a time: ${reported}`);
  const latestMs = observedAt.getTime() + maxSkewSeconds * 1000;
  if (reportedMs <= latestMs) return { occurredAt: reported, reportedAt: null };
  return { occurredAt: new Date(latestMs).toISOString(), reportedAt: reported };
}
