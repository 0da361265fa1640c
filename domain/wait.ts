// Waiting until a reference is pullable in some regions: the verdict from what
// the projections hold, pure so it is tested without a stack. The api's long
// poll computes it; the TypeScript client and `ferry wait` read it.
//
// `repository:tag` waits for the newest push of that tag Ferry has observed
// (a push observed later becomes the one waited for); `repository@digest`
// waits for any push of that digest. A region is done once Ferry announced it
// replicated there (after its pull check and cache purge); the source region
// of a push is done when the push is observed. Any asked region failing for
// good fails the wait; it cannot fix itself.

export type RegionState = 'pending' | 'copying' | 'replicated' | 'failed';

/** One target region's row of a push, as the projections hold it. */
export interface RegionRecord {
  state: RegionState;
  bytesDone: number;
  replicatedAt: string | null;
  failure: string | null;
}

/** A push of the reference waited for. */
export interface PushRecord {
  replicationId: number;
  sourceRegion: string;
  observedAt: string;
  bytesTotal: number | null;
  regions: Record<string, RegionRecord>;
}

export interface RegionProgress {
  /** `unobserved`: no push of the reference has been observed yet. */
  state: RegionState | 'unobserved';
  replicationId: number | null;
  bytesDone: number;
  bytesTotal: number | null;
  replicatedAt: string | null;
  /** Push observed → replicated in this region. */
  lagSeconds: number | null;
  failure: string | null;
}

export type WaitState = 'waiting' | 'replicated' | 'failed';

export interface WaitStatus {
  state: WaitState;
  regions: Record<string, RegionProgress>;
  /** Changes whenever anything above changes: a long poll returns when it differs from the caller's. */
  version: string;
}

const UNOBSERVED: RegionProgress = {
  state: 'unobserved',
  replicationId: null,
  bytesDone: 0,
  bytesTotal: null,
  replicatedAt: null,
  lagSeconds: null,
  failure: null,
};

/** How far along a region is, to pick the most advanced of several pushes of one digest. */
const rank: Record<RegionProgress['state'], number> = { unobserved: 0, failed: 1, pending: 2, copying: 3, replicated: 4 };

function progressOf(push: PushRecord, region: string): RegionProgress {
  const base = { replicationId: push.replicationId, bytesTotal: push.bytesTotal };
  if (region === push.sourceRegion) {
    return { ...base, state: 'replicated', bytesDone: push.bytesTotal ?? 0, replicatedAt: push.observedAt, lagSeconds: 0, failure: null };
  }
  const row = push.regions[region];
  // Not a target of this push (the region was added since): nothing will move it but a backfill.
  if (!row) return { ...base, state: 'pending', bytesDone: 0, replicatedAt: null, lagSeconds: null, failure: null };
  const lagSeconds = row.replicatedAt === null ? null : (Date.parse(row.replicatedAt) - Date.parse(push.observedAt)) / 1000;
  return { ...base, state: row.state, bytesDone: row.bytesDone, replicatedAt: row.replicatedAt, lagSeconds, failure: row.failure };
}

/** FNV-1a, 32 bits: a short, stable fingerprint of the status (not a security boundary). */
function fingerprint(text: string): string {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

/**
 * The verdict for `regions`, given the pushes that can satisfy the wait: the
 * newest push of a tag, or every push of a digest.
 */
export function waitStatus(regions: readonly string[], pushes: readonly PushRecord[]): WaitStatus {
  const progress: Record<string, RegionProgress> = {};
  for (const region of regions) {
    let best = UNOBSERVED;
    for (const push of pushes) {
      const candidate = progressOf(push, region);
      if (rank[candidate.state] > rank[best.state]) best = candidate;
    }
    progress[region] = best;
  }
  const states = Object.values(progress).map((region) => region.state);
  const state: WaitState = states.includes('failed') ? 'failed' : states.every((s) => s === 'replicated') ? 'replicated' : 'waiting';
  return { state, regions: progress, version: fingerprint(JSON.stringify([state, progress])) };
}

/** One line per region, for a terminal or an error message. */
export function describeRegions(status: Pick<WaitStatus, 'regions'>): string[] {
  const width = Math.max(...Object.keys(status.regions).map((region) => region.length));
  return Object.entries(status.regions).map(([region, progress]) => `${region.padEnd(width)}  ${describeProgress(progress)}`);
}

const MB = 1_000_000;

function describeProgress(progress: RegionProgress): string {
  switch (progress.state) {
    case 'unobserved':
      return 'waiting for the push';
    case 'pending':
      return `pending (replication #${progress.replicationId})`;
    case 'copying': {
      const total = progress.bytesTotal;
      const done = (progress.bytesDone / MB).toFixed(1);
      return total ? `copying ${done} / ${(total / MB).toFixed(1)} MB (${Math.floor((100 * progress.bytesDone) / total)}%)` : `copying ${done} MB`;
    }
    case 'replicated':
      return progress.lagSeconds === 0 ? 'replicated (pushed here)' : `replicated ${progress.lagSeconds?.toFixed(2)} s after the push`;
    case 'failed':
      return `failed: ${progress.failure}`;
  }
}
