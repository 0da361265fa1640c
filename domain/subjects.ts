// NATS subjects Ferry publishes on, one scheme, one place.
//
//   ferry.replicated.<region>.<repository>.<tag>.<digest hex>   a reference is pullable in <region>
//   ferry.superseded.<region>.<repository>.<tag>.<digest hex>   the push's digest landed in <region>, but its tag
//                                                               there serves a newer change (named in supersededBy)
//   ferry.deleted.<region>.<repository>.<tag>.<digest hex>      a delete was applied in <region>
//   ferry.failed.<region>.<repository>.<tag>.<digest hex>       replication into <region> failed for good
//   ferry.outcome.<repository>.<tag>.<digest hex>               every region finished (succeeded or failed)
//
// <repository> keeps its '/' (legal in a NATS token) with '.' written as '%2E';
// <tag> likewise, and '-' when the push was by digest only (a tag never starts
// with '-'); <digest hex> is '-' for a tag delete. Subscribers filter with wildcards, reading only their traffic:
//   one tag in one region:     ferry.replicated.westeurope.demo/app.v2.*
//   one digest in one region:  ferry.replicated.westeurope.demo/app.*.<hex>
//   everything in one region:  ferry.replicated.westeurope.>
import { digestHex, type Digest, type RepositoryName, type Tag } from './reference';

export const STREAM_NAME = 'FERRY';
export const STREAM_SUBJECTS = ['ferry.>'];
const ABSENT = '-';

function token(value: string): string {
  return value.replaceAll('.', '%2E');
}

function referenceTokens(repository: RepositoryName, tag: Tag | null, digest: Digest | null): string {
  return `${token(repository)}.${tag === null ? ABSENT : token(tag)}.${digest === null ? ABSENT : digestHex(digest)}`;
}

export function replicatedSubject(region: string, repository: RepositoryName, tag: Tag | null, digest: Digest): string {
  return `ferry.replicated.${region}.${referenceTokens(repository, tag, digest)}`;
}

/** A push whose tag a newer change holds in the region; its digest alone is announced on replicatedSubject. */
export function supersededSubject(region: string, repository: RepositoryName, tag: Tag, digest: Digest): string {
  return `ferry.superseded.${region}.${referenceTokens(repository, tag, digest)}`;
}

export function deletedSubject(region: string, repository: RepositoryName, tag: Tag | null, digest: Digest | null): string {
  return `ferry.deleted.${region}.${referenceTokens(repository, tag, digest)}`;
}

export function failedSubject(region: string, repository: RepositoryName, tag: Tag | null, digest: Digest | null): string {
  return `ferry.failed.${region}.${referenceTokens(repository, tag, digest)}`;
}

export function outcomeSubject(repository: RepositoryName, tag: Tag | null, digest: Digest | null): string {
  return `ferry.outcome.${referenceTokens(repository, tag, digest)}`;
}

/**
 * The filter a waiter subscribes with: a tag (any digest) or a digest (any
 * tag), or every reference of a repository; in one region or, with '*', any.
 */
export function regionMessageFilter(region: string, repository: RepositoryName, reference?: { tag: Tag } | { digest: Digest }, kind: RegionMessage['kind'] = 'replicated'): string {
  const tagToken = reference && 'tag' in reference ? token(reference.tag) : '*';
  const digestToken = reference && 'digest' in reference ? digestHex(reference.digest) : '*';
  return `ferry.${kind}.${region}.${token(repository)}.${tagToken}.${digestToken}`;
}

/** The filter for the all-regions outcome of one digest (any tag) of a repository. */
export function outcomeFilter(repository: RepositoryName, digest: Digest): string {
  return `ferry.outcome.${token(repository)}.*.${digestHex(digest)}`;
}

/** The body of every region-level message; `replicationId` lets consumers drop stale ones. */
export interface RegionMessage {
  kind: 'replicated' | 'superseded' | 'deleted' | 'failed';
  replicationId: number;
  region: string;
  sourceRegion: string;
  repository: RepositoryName;
  tag: Tag | null;
  digest: Digest | null;
  observedAt: string;
  completedAt: string;
  /** Set when kind is 'failed'. */
  failure?: { code: string; reason: string };
  /**
   * Set when kind is 'superseded': the replication whose change holds the tag
   * in the region, or null when none is known yet (the source's tag moved on
   * and its notification has not arrived, or the region's own registry
   * changed the tag and never notified).
   */
  supersededBy?: number | null;
}

export interface OutcomeMessage {
  replicationId: number;
  kind: 'push' | 'delete';
  repository: RepositoryName;
  tag: Tag | null;
  digest: Digest | null;
  sourceRegion: string;
  succeeded: string[];
  failed: Array<{ region: string; reason: string }>;
}

/**
 * JetStream message id: the stream drops a second publish of the same
 * (replication, region) within its duplicate window. The reference is part of
 * it so ids stay unique even if replication ids were ever reissued.
 */
export function messageId(message: { replicationId: number; repository: string; tag: string | null; digest: string | null }, scope: string): string {
  return `${message.repository}:${message.tag ?? ''}@${message.digest ?? ''}#${message.replicationId}/${scope}`;
}
