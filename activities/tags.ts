// Moving and deleting tags in a target region. The source's storage decides:
// under the tag's lock, a tag moves only while the source's tag still holds
// the pushed digest, and is removed only once the source no longer has it.
// Changes from different source regions are ordered by bounded event time
// (domain/tag-order.ts), with the region's tag row in Postgres as the
// fencing token, checked and written in the transaction that writes the link.
// A change the target's own registry made to the tag (a push or delete there
// whose notification Ferry has not recorded yet) is never overwritten
// blindly: the activity waits for that notification, then orders the two
// (domain/tag-order.ts decideUnrecorded).
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { PoolClient } from 'pg';
import type { Digest, RepositoryName, Tag } from '../domain/reference';
import { listedDigests, listingKind, mergeListings, type ListingKind } from '../domain/referrers';
import { decideUnrecorded, laterThan, mayChangeTag, type TagChange, type UnrecordedChange } from '../domain/tag-order';
import type { EventStore } from '../store/event-store';
import type { Regions } from './regions';
import type { RegionRepository } from './repository';

export interface MoveTagInput {
  replicationId: number;
  occurredAt: string;
  /** Absent in inputs of the earlier workflow shape: those are ordered by time alone, with no source check. */
  sourceRegion?: string;
  targetRegion: string;
  repository: RepositoryName;
  tag: Tag;
  digest: Digest;
}

export interface MoveTagResult {
  moved: boolean;
  /** The change that holds the tag when this one did not move it (null: the source's tag moved on). */
  heldBy: number | null;
  /**
   * A referrers or signature tag merged rather than moved (domain/referrers.ts): what it
   * holds now, and whether the region listed referrers the pushed index
   * lacks, which the source region then lacks too.
   */
  referrers?: { holds: Digest; widened: boolean; occurredAt: string };
}

export interface ApplyDeleteInput {
  replicationId: number;
  occurredAt: string;
  sourceRegion?: string;
  targetRegion: string;
  repository: RepositoryName;
  tag: Tag | null;
  digest: Digest | null;
}

export interface ApplyDeleteResult {
  removedTags: Tag[];
  removedManifest: boolean;
  removedLayerLink: boolean;
  /** Why nothing was removed, when the source still holds what the notification said was deleted. */
  skipped: string | null;
}

export const SOURCE_HOLDS_TAG = 'the source still holds the tag';
export const SOURCE_HOLDS_DIGEST = 'the source still holds the digest';

/** Told, about every half second, what a tag change is waiting for (the region activity heartbeats it). */
export type OnWait = (waitingFor: string) => void;

const WAIT_POLL_MS = 500;
/** How many pushes by the target's own registry one merge of a listing takes in while it writes. */
const MERGE_ROUNDS = 3;
/** A tag operation's answer while it waits for the notification of the target's own change (it released its lock). */
const WAIT = Symbol('wait for the target registry’s notification');

export function createTagActivities({ regions, store, awaitNotificationMs }: { regions: Regions; store: EventStore; awaitNotificationMs: number }) {
  const repositories = (input: { sourceRegion?: string; targetRegion: string; repository: RepositoryName }) => ({
    target: regions.repository(input.targetRegion, input.repository),
    source: input.sourceRegion === undefined ? null : regions.repository(input.sourceRegion, input.repository),
  });

  /**
   * Runs a tag operation under its lock until it is not waiting: while the
   * target's registry changed the tag and Ferry has not recorded that change,
   * the operation answers WAIT, and runs again half a second later (lock
   * released, so the notification can be recorded meanwhile).
   */
  async function untilRecorded<T>(operation: (waits: TargetWaits) => Promise<T | typeof WAIT>, onWait?: OnWait): Promise<T> {
    const waits = new TargetWaits();
    const signal = Context.current().cancellationSignal;
    for (;;) {
      const result = await operation(waits);
      if (result !== WAIT) return result;
      onWait?.(waits.describe());
      await sleep(WAIT_POLL_MS, undefined, { signal });
    }
  }

  /**
   * Whether `change` may move or remove `tag` in the target, under the caller's
   * lock, given what holds it there: first what the target's tag holds now,
   * which must be a change Ferry recorded (the last change of the tag there,
   * or the region's own last push or delete of it) or else is waited for
   * (WAIT) and then ordered by its write time; then the change recorded as
   * holding the tag (domain/tag-order.ts). `ours` is the digest this change
   * writes: a retry finds it there. Refused: `heldBy` names the holder, null
   * when it is the target registry's own unrecorded change.
   */
  async function judge(
    sql: PoolClient,
    change: TagChange & { targetRegion: string; repository: RepositoryName },
    tag: Tag,
    target: RegionRepository,
    waits: TargetWaits,
    ours: Digest | null = null,
  ): Promise<typeof WAIT | { allowed: true } | { allowed: false; heldBy: number | null }> {
    let [holder, current] = await Promise.all([store.tagHolder(sql, change.targetRegion, change.repository, tag), target.taggedWithTime(tag)]);
    const digest = current?.digest ?? null;
    let recorded = (digest !== null && digest === ours) || (holder?.digest ?? null) === digest;
    if (!recorded && (await store.lastOwnTagChange(sql, change.targetRegion, change.repository, tag)) === digest) {
      // The region's own change, recorded after the holder was read: its observation set the holder
      // in the same transaction, so the holder is read again, or this change would be judged against
      // the stale one and overwrite the region's later push or delete.
      holder = await store.tagHolder(sql, change.targetRegion, change.repository, tag);
      recorded = true;
    }
    if (!recorded) {
      const verdict = decideUnrecorded(change, waits.met(change.targetRegion, change.repository, tag, digest, current?.modifiedAt ?? null), Date.now(), awaitNotificationMs);
      if (verdict === 'wait') return WAIT;
      if (verdict === 'refused') return { allowed: false, heldBy: null };
    }
    return mayChangeTag(change, holder) ? { allowed: true } : { allowed: false, heldBy: holder!.replicationId };
  }

  /** Whether a delete may remove `tag` from the target: the source no longer has it, and `judge` allows. Under the caller's lock. */
  async function mayRemove(sql: PoolClient, input: ApplyDeleteInput, tag: Tag, source: RegionRepository | null, target: RegionRepository, waits: TargetWaits): Promise<boolean | typeof WAIT> {
    if (source !== null && (await source.tagged(tag)) !== null) return false;
    const judged = await judge(sql, input, tag, target, waits);
    return judged === WAIT ? WAIT : judged.allowed;
  }

  async function recordDelete(input: ApplyDeleteInput, result: ApplyDeleteResult, sql?: PoolClient): Promise<ApplyDeleteResult> {
    await store.append(
      {
        type: 'DeleteApplied',
        replicationId: input.replicationId,
        region: input.targetRegion,
        data: { repository: input.repository, digest: input.digest, removedTags: result.removedTags, occurredAt: input.occurredAt, skipped: result.skipped },
      },
      sql,
    );
    return result;
  }

  /** A tag delete: under the tag's lock, removed only when the source no longer has the tag. */
  async function deleteTag(input: ApplyDeleteInput, tag: Tag, onWait?: OnWait): Promise<ApplyDeleteResult> {
    const { source, target } = repositories(input);
    return untilRecorded(
      (waits) =>
        store.withTagLock(input.targetRegion, input.repository, tag, async (sql) => {
          const sourceHolds = source !== null && (await source.tagged(tag)) !== null;
          const judged = await target.tagged(tag);
          const removed = !sourceHolds && (await mayRemove(sql, input, tag, null, target, waits));
          if (removed === WAIT) return WAIT;
          // The target's registry wrote the tag since it was judged: judge again.
          if (removed && !(await target.untag(tag, judged))) return WAIT;
          const result = { removedTags: removed ? [tag] : [], removedManifest: false, removedLayerLink: false, skipped: sourceHolds ? SOURCE_HOLDS_TAG : null };
          return recordDelete(input, result, sql);
        }),
      onWait,
    );
  }

  /**
   * A digest delete: under the repository's lock, so no tag moves onto the
   * manifest meanwhile. Each tag pointing at it goes as the source's tag
   * went. The manifest stays while the source has it again (pushed again
   * since, or written back by the replication of an older push) or a tag the
   * delete may not remove still points at it.
   */
  async function deleteDigest(input: ApplyDeleteInput, digest: Digest, onWait?: OnWait): Promise<ApplyDeleteResult> {
    const { source, target } = repositories(input);
    // Tags an attempt removed before it had to judge again: still this delete's, in its record.
    const removedEarlier: Tag[] = [];
    return untilRecorded(
      (waits) =>
        store.withRepositoryLock(input.targetRegion, input.repository, async (sql) => {
          const result: ApplyDeleteResult = { removedTags: [...removedEarlier], removedManifest: false, removedLayerLink: false, skipped: null };
          if (await target.hasManifest(digest)) {
            // Each tag goes as the source's tag went, even when the source has the manifest again.
            const sourceHolds = source !== null && (await source.hasManifest(digest));
            const removable: Tag[] = [];
            let kept = 0;
            for (const tag of await target.lookup(digest)) {
              const removal = await mayRemove(sql, input, tag, source, target, waits);
              // Nothing is removed while any of the tags waits: the whole delete runs again.
              if (removal === WAIT) return WAIT;
              if (removal) removable.push(tag);
              else kept++;
            }
            for (const tag of removable) {
              // The target's registry wrote the tag since it was judged: the whole delete runs again.
              if (!(await target.untag(tag, digest))) return WAIT;
              removedEarlier.push(tag);
            }
            result.removedTags.push(...removable.filter((tag) => !result.removedTags.includes(tag)));
            if (sourceHolds) result.skipped = SOURCE_HOLDS_DIGEST;
            if (!sourceHolds && kept === 0) {
              await target.unlinkManifest(digest);
              result.removedManifest = true;
            }
          } else if (await target.linksBlob(digest)) {
            if (source !== null && (await source.linksBlob(digest))) return recordDelete(input, { ...result, skipped: SOURCE_HOLDS_DIGEST }, sql);
            await target.unlinkBlob(digest);
            result.removedLayerLink = true;
          }
          return recordDelete(input, result, sql);
        }),
      onWait,
    );
  }

  /**
   * Merges the listing `input.digest` (in the target already) into what the
   * target's tag holds, under the tag's lock (domain/referrers.ts): the union,
   * naming only manifests or signature layers the target has, and no referrer
   * whose manifest was deleted since, as the deleting region's storage
   * confirms (a client removing a referrer deletes it, then pushes the listing
   * without it). Null when there is nothing to merge
   * with (no tag, or either is not that kind of listing): the tag is then
   * ordered like any other. `occurredAt`: the later of this change and the
   * one holding the tag, which the tag keeps as its order.
   */
  async function mergeListing(
    sql: PoolClient,
    kind: ListingKind,
    input: MoveTagInput,
    target: RegionRepository,
    signal: AbortSignal,
  ): Promise<{ holds: Digest; held: Digest; widened: boolean; occurredAt: string } | null> {
    const readSince = new Date();
    const tagged = await target.tagged(input.tag, signal);
    if (tagged === null) return null;
    let held: Digest = tagged;
    const holder = await store.tagHolder(sql, input.targetRegion, input.repository, input.tag);
    const occurredAt = holder !== null && laterThan(holder, input) ? holder.occurredAt : input.occurredAt;
    let [incoming, holds, widened] = [input.digest, input.digest, false];
    const known = new Set<string>([held, input.digest]);
    // A push by the region's own registry can land while this merges (it takes no lock): merged in too, a few rounds at most.
    for (let round = 0; round < MERGE_ROUNDS; round++) {
      const merged = await mergeOnce(kind, target, input.repository, input.tag, incoming, held, signal);
      if (merged === null) return round === 0 ? null : { holds, held, widened, occurredAt };
      holds = merged.holds;
      widened ||= merged.widened;
      known.add(holds);
      const newcomer = (await target.taggedSince(input.tag, readSince, signal)).find((digest) => !known.has(digest));
      if (newcomer === undefined || !(await target.hasManifest(newcomer, signal))) return { holds, held, widened, occurredAt };
      [incoming, held] = [newcomer, holds];
      known.add(newcomer);
      widened = true;
    }
    return { holds, held, widened, occurredAt };
  }

  /** One merge of `incoming` into `held` in the target, written there: what the tag holds after, and whether it lists more than `incoming`. */
  async function mergeOnce(
    kind: ListingKind,
    target: RegionRepository,
    repository: RepositoryName,
    tag: Tag,
    incoming: Digest,
    held: Digest,
    signal: AbortSignal,
  ): Promise<{ holds: Digest; widened: boolean } | null> {
    // Already there (another region's merge wrote the same union): nothing to order it against.
    if (held === incoming) return { holds: incoming, widened: false };
    const [heldRead, incomingRead] = await Promise.all([target.getManifest(held, signal), target.getManifest(incoming, signal)]);
    if (heldRead.found !== 'ok' || incomingRead.found !== 'ok') return null;
    const listed = listedDigests(kind, heldRead.bytes) ?? [];
    const deleted = kind === 'referrers' ? await store.deletedDigests(repository, listed) : new Map<string, string>();
    const present = new Set<string>();
    for (const digest of listed) {
      // A recorded delete counts once the storage of the region that deleted it confirms it (invariant 9).
      const deletedIn = deleted.get(digest);
      if (deletedIn !== undefined && regions.reachable(deletedIn) && !(await regions.repository(deletedIn, repository).hasManifest(digest, signal))) continue;
      if (await (kind === 'referrers' ? target.hasManifest(digest, signal) : target.linksBlob(digest, signal))) present.add(digest);
    }
    const merge = mergeListings(kind, incomingRead.bytes, heldRead.bytes, (digest) => present.has(digest));
    if (merge === null) return null;
    if (merge.holds === 'incoming') {
      await target.tag(tag, incoming, signal);
      return { holds: incoming, widened: false };
    }
    if (merge.holds === 'held') return { holds: held, widened: merge.widened };
    if (merge.config !== undefined) await target.putBlob({ digest: merge.config.digest, size: merge.config.bytes.byteLength }, merge.config.bytes, signal);
    await target.putManifest({ digest: merge.digest, size: merge.bytes.byteLength }, merge.bytes, signal);
    await target.tag(tag, merge.digest, signal);
    return { holds: merge.digest, widened: true };
  }

  return {
    /**
     * Points the target's tag at `digest`, last of all writes: under the tag's
     * lock, only while the target has the manifest, the source's tag still
     * holds the digest, and no later change from another source holds the tag.
     * A referrers tag (`sha256-<hex>`) or cosign signature tag
     * (`sha256-<hex>.sig`, `.att`) is merged instead: the region keeps every
     * referrer or signature it listed (domain/referrers.ts).
     */
    async moveTag(input: MoveTagInput, onWait?: OnWait): Promise<MoveTagResult> {
      const { source, target } = repositories(input);
      const signal = Context.current().cancellationSignal;
      const data = { repository: input.repository, tag: input.tag };
      const superseded = async (sql: PoolClient, newerReplicationId: number | null): Promise<MoveTagResult> => {
        await store.append({ type: 'TagSuperseded', replicationId: input.replicationId, region: input.targetRegion, data: { ...data, newerReplicationId } }, sql);
        return { moved: false, heldBy: newerReplicationId };
      };
      return untilRecorded(
        (waits) =>
          store.withTagLock(input.targetRegion, input.repository, input.tag, async (sql) => {
            if (!(await target.hasManifest(input.digest, signal))) {
              // Never point a tag at a manifest the region cannot serve.
              throw ApplicationFailure.retryable(`manifest ${input.digest} is not yet in ${input.repository} in ${input.targetRegion}`, 'ManifestNotInTarget');
            }
            // The source decides, read again under the lock: a newer change of the tag there wins.
            if (source !== null && (await source.tagged(input.tag, signal)) !== input.digest) return superseded(sql, null);
            // Referrers or signatures listed in two regions are merged, whichever change came first.
            const kind = listingKind(input.tag);
            const merged = kind === null ? null : await mergeListing(sql, kind, input, target, signal);
            if (merged !== null) {
              const { holds, held, widened, occurredAt } = merged;
              // Recorded as merged: the tag keeps the later order of this change and its holder (store/projections.ts).
              await store.append({ type: 'TagReplicated', replicationId: input.replicationId, region: input.targetRegion, data: { ...data, digest: holds, occurredAt: input.occurredAt, mergedWith: held } }, sql);
              return { moved: true, heldBy: null, referrers: { holds, widened, occurredAt } };
            }
            // So do a later change from another source, and one the target's own registry made.
            const judged = await judge(sql, input, input.tag, target, waits, input.digest);
            if (judged === WAIT) return WAIT;
            if (!judged.allowed) return superseded(sql, judged.heldBy);
            await target.tag(input.tag, input.digest, signal);
            await store.append({ type: 'TagReplicated', replicationId: input.replicationId, region: input.targetRegion, data: { ...data, digest: input.digest, occurredAt: input.occurredAt } }, sql);
            return { moved: true, heldBy: null };
          }),
        onWait,
      );
    },

    /**
     * Applies a delete made in the source, once the source's storage confirms
     * it: a tag, or a digest (a manifest, with every tag pointing at it, or
     * else a blob's link in the repository).
     */
    async applyDelete(input: ApplyDeleteInput, onWait?: OnWait): Promise<ApplyDeleteResult> {
      if (input.digest !== null) return deleteDigest(input, input.digest, onWait);
      if (input.tag !== null) return deleteTag(input, input.tag, onWait);
      return recordDelete(input, { removedTags: [], removedManifest: false, removedLayerLink: false, skipped: null });
    },
  };
}

/** The target's own changes one tag operation met, and since when, so that each wait is bounded. */
class TargetWaits {
  private readonly seen = new Map<string, UnrecordedChange & { where: string }>();
  private last: (UnrecordedChange & { where: string }) | null = null;

  met(region: string, repository: string, tag: string, digest: string | null, modifiedAt: Date | null): UnrecordedChange {
    const where = `${region} ${repository}:${tag}`;
    const key = `${where} ${digest ?? 'none'}`;
    let change = this.seen.get(key);
    if (change === undefined) {
      change = { where, digest, modifiedAt, seenAt: Date.now() };
      this.seen.set(key, change);
    }
    this.last = change;
    return change;
  }

  describe(): string {
    const change = this.last;
    if (change === null) return 'the notification of a change the target registry made';
    const what = change.digest === null ? 'deleted' : `pointed at ${change.digest}`;
    return `the notification of ${change.where}, which that region's registry ${what} and Ferry has not recorded yet`;
  }
}
