// Moving and deleting tags in a target region. The source's storage decides:
// under the tag's lock, a tag moves only while the source's tag still holds
// the pushed digest, and is removed only once the source no longer has it.
// Changes from different source regions are ordered by bounded event time
// (domain/tag-order.ts), with the region's tag row in Postgres as the
// fencing token, checked and written in the transaction that writes the link.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { PoolClient } from 'pg';
import type { Digest, RepositoryName, Tag } from '../domain/reference';
import { mayChangeTag, type TagChange } from '../domain/tag-order';
import type { EventStore } from '../store/event-store';
import { RegionRepository } from './repository';
import { storageOf, type Storages } from './storage';

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

export function createTagActivities({ storages, store }: { storages: Storages; store: EventStore }) {
  const repositories = (input: { sourceRegion?: string; targetRegion: string; repository: RepositoryName }) => ({
    target: new RegionRepository(storageOf(storages, input.targetRegion), input.repository),
    source: input.sourceRegion === undefined ? null : new RegionRepository(storageOf(storages, input.sourceRegion), input.repository),
  });

  /** Whether `change` may remove or move `tag` in the target, given what holds it there now. */
  async function fenceAllows(sql: PoolClient, change: TagChange & { targetRegion: string; repository: string }, tag: Tag) {
    const holder = await store.tagHolder(sql, change.targetRegion, change.repository, tag);
    return { allowed: mayChangeTag(change, holder), holder };
  }

  /** Untags unless the source still holds the tag or a later change from elsewhere holds it; true when removed. Under the caller's lock. */
  async function removeTag(sql: PoolClient, input: ApplyDeleteInput, tag: Tag, source: RegionRepository | null, target: RegionRepository): Promise<boolean> {
    if (source !== null && (await source.tagged(tag)) !== null) return false;
    if (!(await fenceAllows(sql, input, tag)).allowed) return false;
    await target.untag(tag);
    return true;
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
  async function deleteTag(input: ApplyDeleteInput, tag: Tag): Promise<ApplyDeleteResult> {
    const { source, target } = repositories(input);
    return store.withTagLock(input.targetRegion, input.repository, tag, async (sql) => {
      const sourceHolds = source !== null && (await source.tagged(tag)) !== null;
      const removed = !sourceHolds && (await removeTag(sql, input, tag, null, target));
      const result = { removedTags: removed ? [tag] : [], removedManifest: false, removedLayerLink: false, skipped: sourceHolds ? SOURCE_HOLDS_TAG : null };
      return recordDelete(input, result, sql);
    });
  }

  /**
   * A digest delete: under the repository's lock, so no tag moves onto the
   * manifest meanwhile. Nothing is unlinked while the source still has the
   * digest (pushed again since), and the manifest stays while a tag the
   * delete may not remove still points at it.
   */
  async function deleteDigest(input: ApplyDeleteInput, digest: Digest): Promise<ApplyDeleteResult> {
    const { source, target } = repositories(input);
    return store.withRepositoryLock(input.targetRegion, input.repository, async (sql) => {
      const result: ApplyDeleteResult = { removedTags: [], removedManifest: false, removedLayerLink: false, skipped: null };
      if (await target.hasManifest(digest)) {
        if (source !== null && (await source.hasManifest(digest))) return recordDelete(input, { ...result, skipped: SOURCE_HOLDS_DIGEST }, sql);
        let kept = 0;
        for (const tag of await target.lookup(digest)) {
          if (await removeTag(sql, input, tag, source, target)) result.removedTags.push(tag);
          else kept++;
        }
        if (kept === 0) {
          await target.unlinkManifest(digest);
          result.removedManifest = true;
        }
      } else if (await target.linksBlob(digest)) {
        if (source !== null && (await source.linksBlob(digest))) return recordDelete(input, { ...result, skipped: SOURCE_HOLDS_DIGEST }, sql);
        await target.unlinkBlob(digest);
        result.removedLayerLink = true;
      }
      return recordDelete(input, result, sql);
    });
  }

  return {
    /**
     * Points the target's tag at `digest`, last of all writes: under the tag's
     * lock, only while the target has the manifest, the source's tag still
     * holds the digest, and no later change from another source holds the tag.
     */
    async moveTag(input: MoveTagInput): Promise<MoveTagResult> {
      const { source, target } = repositories(input);
      const signal = Context.current().cancellationSignal;
      return store.withTagLock(input.targetRegion, input.repository, input.tag, async (sql) => {
        if (!(await target.hasManifest(input.digest, signal))) {
          // Never point a tag at a manifest the region cannot serve.
          throw ApplicationFailure.retryable(`manifest ${input.digest} is not yet in ${input.repository} in ${input.targetRegion}`, 'ManifestNotInTarget');
        }
        const data = { repository: input.repository, tag: input.tag };
        // The source decides, read again under the lock: a newer change of the tag there wins.
        if (source !== null && (await source.tagged(input.tag, signal)) !== input.digest) {
          await store.append({ type: 'TagSuperseded', replicationId: input.replicationId, region: input.targetRegion, data: { ...data, newerReplicationId: null } }, sql);
          return { moved: false, heldBy: null };
        }
        const { allowed, holder } = await fenceAllows(sql, input, input.tag);
        if (!allowed) {
          await store.append({ type: 'TagSuperseded', replicationId: input.replicationId, region: input.targetRegion, data: { ...data, newerReplicationId: holder!.replicationId } }, sql);
          return { moved: false, heldBy: holder!.replicationId };
        }
        await target.tag(input.tag, input.digest, signal);
        await store.append({ type: 'TagReplicated', replicationId: input.replicationId, region: input.targetRegion, data: { ...data, digest: input.digest, occurredAt: input.occurredAt } }, sql);
        return { moved: true, heldBy: null };
      });
    },

    /**
     * Applies a delete made in the source, once the source's storage confirms
     * it: a tag, or a digest (a manifest, with every tag pointing at it, or
     * else a blob's link in the repository).
     */
    async applyDelete(input: ApplyDeleteInput): Promise<ApplyDeleteResult> {
      if (input.digest !== null) return deleteDigest(input, input.digest);
      if (input.tag !== null) return deleteTag(input, input.tag);
      return recordDelete(input, { removedTags: [], removedManifest: false, removedLayerLink: false, skipped: null });
    },
  };
}
