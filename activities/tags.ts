// Moving and deleting tags in a target region. A tag moves only forward: the
// region's tag row in Postgres is the fencing token, checked and advanced
// under a per-tag lock in the same transaction that writes the tag's link.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { PoolClient } from 'pg';
import type { Digest, RepositoryName, Tag } from '../domain/reference';
import { parseTag } from '../domain/reference';
import type { EventStore } from '../store/event-store';
import { storageOf, type RegionStorage, type Storages } from './storage';

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

/** Removes a tag's keys if no newer replication holds it; true when removed. */
async function removeTag(store: EventStore, target: RegionStorage, input: ApplyDeleteInput, tag: Tag): Promise<boolean> {
  return store.withTagLock(input.targetRegion, input.repository, tag, async (sql) => {
    if ((await heldByNewer(store, sql, { ...input, tag })) !== null) return false;
    await target.deletePrefix(target.layout.tagPrefix(input.repository, tag));
    return true;
  });
}

/** Tags of a repository in a region whose current link points at `digest`. */
async function tagsPointingAt(target: RegionStorage, repository: RepositoryName, digest: Digest): Promise<Tag[]> {
  const tags: Tag[] = [];
  for (const name of await target.listChildren(target.layout.tagsPrefix(repository))) {
    const tag = parseTag(name);
    if ((await target.readLink(target.layout.tagCurrentLink(repository, tag))) === digest) tags.push(tag);
  }
  return tags;
}

export function createTagActivities({ storages, store }: { storages: Storages; store: EventStore }) {
  return {
    /** Points the target's tag at `digest`, last of all writes, unless a newer push holds it. */
    async moveTag(input: MoveTagInput): Promise<MoveTagResult> {
      const target = storageOf(storages, input.targetRegion);
      const signal = Context.current().cancellationSignal;
      if ((await target.readLink(target.layout.revisionLink(input.repository, input.digest), signal)) !== input.digest) {
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
        await target.writeLink(target.layout.tagIndexLink(input.repository, input.tag, input.digest), input.digest, signal);
        await target.writeLink(target.layout.tagCurrentLink(input.repository, input.tag), input.digest, signal);
        await store.append({ type: 'TagReplicated', replicationId: input.replicationId, region: input.targetRegion, data: { ...data, digest: input.digest, occurredAt: input.occurredAt } }, sql);
        return { moved: true, heldBy: null };
      });
    },

    /**
     * Applies a delete made in the source: a tag, or a digest (a manifest, with
     * every tag pointing at it, or else a blob's link in the repository).
     */
    async applyDelete(input: ApplyDeleteInput): Promise<ApplyDeleteResult> {
      const target = storageOf(storages, input.targetRegion);
      const result: ApplyDeleteResult = { removedTags: [], removedManifest: false, removedLayerLink: false };
      if (input.digest === null && input.tag !== null) {
        if (await removeTag(store, target, input, input.tag)) result.removedTags.push(input.tag);
      } else if (input.digest !== null) {
        const revisionLink = target.layout.revisionLink(input.repository, input.digest);
        const layerLink = target.layout.layerLink(input.repository, input.digest);
        if ((await target.readLink(revisionLink)) !== null) {
          for (const tag of await tagsPointingAt(target, input.repository, input.digest)) {
            if (await removeTag(store, target, input, tag)) result.removedTags.push(tag);
          }
          await target.deleteKeys([revisionLink]);
          result.removedManifest = true;
        } else if ((await target.readLink(layerLink)) !== null) {
          await target.deleteKeys([layerLink]);
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
