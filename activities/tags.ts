// Moving and deleting tags in a target region. A tag moves only forward: the
// region's tag row in Postgres is the fencing token, checked and advanced
// under a per-tag lock in the same transaction that writes the tag's link.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { PoolClient } from 'pg';
import type { Digest, RepositoryName, Tag } from '../domain/reference';
import type { EventStore } from '../store/event-store';
import { RegionRepository } from './repository';
import { storageOf, type Storages } from './storage';

export interface MoveTagInput {
  replicationId: number;
  occurredAt: string;
  targetRegion: string;
  repository: RepositoryName;
  tag: Tag;
  digest: Digest;
}

export interface MoveTagResult {
  moved: boolean;
  /** The newer replication that holds the tag when this one did not move it. */
  heldBy: number | null;
}

export interface ApplyDeleteInput {
  replicationId: number;
  occurredAt: string;
  targetRegion: string;
  repository: RepositoryName;
  tag: Tag | null;
  digest: Digest | null;
}

export interface ApplyDeleteResult {
  removedTags: Tag[];
  removedManifest: boolean;
  removedLayerLink: boolean;
}

function heldByNewer(store: EventStore, sql: PoolClient, input: { replicationId: number; occurredAt: string; targetRegion: string; repository: string; tag: string }) {
  return store.newerHolder(sql, input.targetRegion, input.repository, input.tag, input);
}

/** Untags if no newer replication holds the tag; true when removed. */
async function removeTag(store: EventStore, target: RegionRepository, input: ApplyDeleteInput, tag: Tag): Promise<boolean> {
  return store.withTagLock(input.targetRegion, input.repository, tag, async (sql) => {
    if ((await heldByNewer(store, sql, { ...input, tag })) !== null) return false;
    await target.untag(tag);
    return true;
  });
}

export function createTagActivities({ storages, store }: { storages: Storages; store: EventStore }) {
  return {
    /** Points the target's tag at `digest`, last of all writes, unless a newer push holds it. */
    async moveTag(input: MoveTagInput): Promise<MoveTagResult> {
      const target = new RegionRepository(storageOf(storages, input.targetRegion), input.repository);
      const signal = Context.current().cancellationSignal;
      if (!(await target.hasManifest(input.digest, signal))) {
        // Never point a tag at a manifest the region cannot serve.
        throw ApplicationFailure.retryable(`manifest ${input.digest} is not yet in ${input.repository} in ${input.targetRegion}`, 'ManifestNotInTarget');
      }
      return store.withTagLock(input.targetRegion, input.repository, input.tag, async (sql) => {
        const heldBy = await heldByNewer(store, sql, input);
        const data = { repository: input.repository, tag: input.tag };
        if (heldBy !== null) {
          await store.append({ type: 'TagSuperseded', replicationId: input.replicationId, region: input.targetRegion, data: { ...data, newerReplicationId: heldBy } }, sql);
          return { moved: false, heldBy };
        }
        await target.tag(input.tag, input.digest, signal);
        await store.append({ type: 'TagReplicated', replicationId: input.replicationId, region: input.targetRegion, data: { ...data, digest: input.digest, occurredAt: input.occurredAt } }, sql);
        return { moved: true, heldBy: null };
      });
    },

    /**
     * Applies a delete made in the source: a tag, or a digest (a manifest, with
     * every tag pointing at it, or else a blob's link in the repository).
     */
    async applyDelete(input: ApplyDeleteInput): Promise<ApplyDeleteResult> {
      const target = new RegionRepository(storageOf(storages, input.targetRegion), input.repository);
      const result: ApplyDeleteResult = { removedTags: [], removedManifest: false, removedLayerLink: false };
      if (input.digest === null && input.tag !== null) {
        if (await removeTag(store, target, input, input.tag)) result.removedTags.push(input.tag);
      } else if (input.digest !== null) {
        if (await target.hasManifest(input.digest)) {
          for (const tag of await target.lookup(input.digest)) {
            if (await removeTag(store, target, input, tag)) result.removedTags.push(tag);
          }
          await target.unlinkManifest(input.digest);
          result.removedManifest = true;
        } else if (await target.linksBlob(input.digest)) {
          await target.unlinkBlob(input.digest);
          result.removedLayerLink = true;
        }
      }
      await store.append({
        type: 'DeleteApplied',
        replicationId: input.replicationId,
        region: input.targetRegion,
        data: { repository: input.repository, digest: input.digest, removedTags: result.removedTags, occurredAt: input.occurredAt },
      });
      return result;
    },
  };
}
