// What Ferry keeps of the blobs of registry-API regions (schema.sql):
//
// - where the region holds a blob (registry_blob_homes): one repository per
//   blob and region, written after an upload or mount landed there. A copy of
//   the same blob into another repository of that region asks the registry to
//   mount it from there: a shared base layer crosses into such a region once,
//   as into a storage region, where every repository shares the blob.
// - where an upload stands (registry_uploads): its latest Location and
//   offset, written after each chunk, so an attempt after a killed worker
//   finds the upload even when the attempt's last heartbeat (throttled, a few
//   seconds apart) predates it; the registry then says how far it got.
import type { Digest, RepositoryName } from '../domain/reference';
import type { EventStore } from './event-store';

export class BlobHomes {
  constructor(private readonly store: EventStore) {}

  /** A repository of `region` known to hold `digest`; null when none is. */
  async homeOf(region: string, digest: Digest): Promise<RepositoryName | null> {
    const { rows } = await this.store.pool.query<{ repository: RepositoryName }>('SELECT repository FROM registry_blob_homes WHERE region = $1 AND digest = $2', [region, digest]);
    return rows[0]?.repository ?? null;
  }

  /** Records that `repository` of `region` holds `digest` (the latest such repository wins). */
  async record(region: string, digest: Digest, repository: RepositoryName): Promise<void> {
    await this.store.pool.query(
      `INSERT INTO registry_blob_homes (region, digest, repository) VALUES ($1, $2, $3)
       ON CONFLICT (region, digest) DO UPDATE SET repository = EXCLUDED.repository`,
      [region, digest, repository],
    );
  }
}

/** An upload into a registry-API region as last seen after a chunk landed. */
export interface UploadCheckpoint {
  location: string;
  offset: number;
}

export class UploadCheckpoints {
  constructor(private readonly store: EventStore) {}

  async latest(region: string, repository: RepositoryName, digest: Digest): Promise<UploadCheckpoint | null> {
    const { rows } = await this.store.pool.query<{ location: string; offset: string }>(
      'SELECT location, "offset" FROM registry_uploads WHERE region = $1 AND repository = $2 AND digest = $3',
      [region, repository, digest],
    );
    return rows[0] === undefined ? null : { location: rows[0].location, offset: Number(rows[0].offset) };
  }

  async save(region: string, repository: RepositoryName, digest: Digest, checkpoint: UploadCheckpoint): Promise<void> {
    await this.store.pool.query(
      `INSERT INTO registry_uploads (region, repository, digest, location, "offset", updated_at) VALUES ($1, $2, $3, $4, $5, now())
       ON CONFLICT (region, repository, digest) DO UPDATE SET location = EXCLUDED.location, "offset" = EXCLUDED."offset", updated_at = now()`,
      [region, repository, digest, checkpoint.location, checkpoint.offset],
    );
  }

  async clear(region: string, repository: RepositoryName, digest: Digest): Promise<void> {
    await this.store.pool.query('DELETE FROM registry_uploads WHERE region = $1 AND repository = $2 AND digest = $3', [region, repository, digest]);
  }
}
