// Waiting until a reference is pullable in some regions: the verdict from what
// the projections hold, pure so it is tested without a stack. The api's long
// poll computes it; the TypeScript client and `ferry wait` read it.
//
// `repository:tag` waits for the newest push of that tag Ferry has observed
// (a push observed later becomes the one waited for); where a newer change
// holds the tag in a region (the push is `superseded` there), the wait follows
// that change instead, since the region's tag serves it. `repository@digest`
// waits for any push of that digest (a superseded push landed its digest). A region is done once Ferry announced it
// replicated there (after its pull check and cache purge); the source region
// of a push is done when the push is observed. Any asked region failing for
// good fails the wait; it cannot fix itself. Nor can a region the push does
// not target (`excluded`: a replication rule or the region's sources keep it
// out, or it was added since): only a backfill would bring the push there.

export type RegionState = 'pending' | 'copying' | 'replicated' | 'superseded' | 'failed';

/** One target region's row of a push, as the projections hold it. */
export interface RegionRecord {
  state: RegionState;
  bytesDone: number;
  replicatedAt: string | null;
  failure: string | null;
  /** With state superseded: the change holding the tag there, when known. */
  supersededBy: number | null;
}

/** A change of the reference waited for: a push, or (followed from a superseded push) a delete of its tag. */
export interface PushRecord {
  replicationId: number;
  kind: 'push' | 'delete-tag' | 'delete-digest';
  sourceRegion: string;
  observedAt: string;
  bytesTotal: number | null;
  regions: Record<string, RegionRecord>;
}

export interface RegionProgress {
  /** `unobserved`: no push of the reference has been observed yet; `excluded`: the push does not target the region. */
  state: RegionState | 'unobserved' | 'excluded';
  replicationId: number | null;
  bytesDone: number;
  bytesTotal: number | null;
  replicatedAt: string | null;
  /** Push observed → replicated in this region. */
  lagSeconds: number | null;
  failure: string | null;
  /** With state superseded: the change holding the tag there (null: not known yet). */
  supersededBy: number | null;
  /** The pushes of the tag passed over in this region: each superseded there by the next, the last by `replicationId`. */
  via: number[];
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
  supersededBy: null,
  via: [],
};

/** How far along a region is, to pick the most advanced of several pushes of one digest. */
const rank: Record<RegionProgress['state'], number> = { unobserved: 0, excluded: 1, failed: 2, pending: 3, superseded: 3, copying: 4, replicated: 5 };

function progressOf(push: PushRecord, region: string): RegionProgress {
  const base = { replicationId: push.replicationId, bytesTotal: push.bytesTotal, supersededBy: null, via: [] };
  if (region === push.sourceRegion) {
    return { ...base, state: 'replicated', bytesDone: push.bytesTotal ?? 0, replicatedAt: push.observedAt, lagSeconds: 0, failure: null };
  }
  const row = push.regions[region];
  // Not a target of this push (kept out by a rule or the region's sources, or added since): nothing will move it but a backfill.
  if (!row) return { ...base, state: 'excluded', bytesDone: 0, replicatedAt: null, lagSeconds: null, failure: `replication #${push.replicationId} is not replicated into ${region}` };
  const lagSeconds = row.replicatedAt === null ? null : (Date.parse(row.replicatedAt) - Date.parse(push.observedAt)) / 1000;
  const supersededBy = row.state === 'superseded' ? row.supersededBy : null;
  return { ...base, state: row.state, bytesDone: row.bytesDone, replicatedAt: row.replicatedAt, lagSeconds, failure: row.failure, supersededBy };
}

/**
 * A tag's progress in a region: the newest push's, or, where a newer change
 * holds the tag (the push is superseded there), that change's, followed as
 * far as the pushes known go. A region whose tag a delete holds, or a change
 * not known yet, stays superseded: only a newer push can satisfy the wait.
 */
function followedProgress(newest: PushRecord, byId: ReadonlyMap<number, PushRecord>, region: string): RegionProgress {
  const via: number[] = [];
  let push = newest;
  for (;;) {
    const progress = { ...progressOf(push, region), via: [...via] };
    if (progress.state !== 'superseded' || progress.supersededBy === null) return progress;
    const next = byId.get(progress.supersededBy);
    if (next === undefined || next.kind !== 'push' || next === newest || via.includes(next.replicationId)) return progress;
    via.push(push.replicationId);
    push = next;
  }
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
 * The verdict for `regions`. For a tag: `pushes` starts with its newest push,
 * followed by the changes its superseded regions name. For a digest: every
 * push of it, where a superseded push counts as replicated (its digest landed).
 */
export function waitStatus(regions: readonly string[], pushes: readonly PushRecord[], waitingFor: 'tag' | 'digest' = 'digest'): WaitStatus {
  const progress: Record<string, RegionProgress> = {};
  const byId = new Map(pushes.map((push) => [push.replicationId, push]));
  for (const region of regions) {
    if (waitingFor === 'tag') {
      progress[region] = pushes[0] === undefined ? UNOBSERVED : followedProgress(pushes[0], byId, region);
      continue;
    }
    let best = UNOBSERVED;
    for (const push of pushes) {
      const found = progressOf(push, region);
      const candidate: RegionProgress = found.state === 'superseded' ? { ...found, state: 'replicated', supersededBy: null } : found;
      if (rank[candidate.state] > rank[best.state]) best = candidate;
    }
    progress[region] = best;
  }
  const states = Object.values(progress).map((region) => region.state);
  const state: WaitState = states.includes('failed') || states.includes('excluded') ? 'failed' : states.every((s) => s === 'replicated') ? 'replicated' : 'waiting';
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
      return `pending (replication #${progress.replicationId})${followed(progress)}`;
    case 'copying': {
      const total = progress.bytesTotal;
      const done = (progress.bytesDone / MB).toFixed(1);
      const copying = total ? `copying ${done} / ${(total / MB).toFixed(1)} MB (${Math.floor((100 * progress.bytesDone) / total)}%)` : `copying ${done} MB`;
      return `${copying}${followed(progress)}`;
    }
    case 'replicated': {
      const how = progress.lagSeconds === 0 ? 'replicated (pushed here)' : `replicated ${progress.lagSeconds?.toFixed(2)} s after the push`;
      return `${how}${followed(progress)}`;
    }
    case 'superseded':
      return progress.supersededBy === null
        ? `superseded: a newer change of the tag, not yet observed, holds it over replication #${progress.replicationId}; waiting for that push`
        : `superseded by replication #${progress.supersededBy}, which is not a push of the tag; waiting for a newer push`;
    case 'failed':
      return `failed: ${progress.failure}`;
    case 'excluded':
      return `not replicated here by rule: replication #${progress.replicationId} does not target this region (config rules, or the region's sources); a backfill brings it once they do`;
  }
}

/** " (replication #N, which superseded #M here)" when the region's tag serves another push than the newest observed. */
function followed(progress: RegionProgress): string {
  return progress.via.length === 0 ? '' : ` (replication #${progress.replicationId}, which superseded #${progress.via.join(', #')} here)`;
}
