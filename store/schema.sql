-- Ferry's event store. `events` is append-only and the record of truth;
-- every other table is a projection folded from it (store/projections.ts),
-- in the same transaction as the event, and rebuildable from scratch.

CREATE TABLE IF NOT EXISTS events (
  seq            bigserial PRIMARY KEY,
  type           text        NOT NULL,
  replication_id bigint,
  region         text,
  data           jsonb       NOT NULL,
  -- Effect once: a retried activity or a duplicated notification appends nothing.
  dedupe_key     text        NOT NULL UNIQUE,
  recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS events_by_replication ON events (replication_id, seq);

-- One row per accepted push or delete, keyed by the seq of its observation event.
CREATE TABLE IF NOT EXISTS replications (
  id             bigint      PRIMARY KEY,
  kind           text        NOT NULL,
  source_region  text        NOT NULL,
  repository     text        NOT NULL,
  tag            text,
  digest         text,
  media_type     text,
  workflow_id    text        NOT NULL,
  observed_at    timestamptz NOT NULL,
  outcome        text        NOT NULL DEFAULT 'pending',
  finished_at    timestamptz
);
CREATE INDEX IF NOT EXISTS replications_by_reference ON replications (repository, tag, id);
CREATE INDEX IF NOT EXISTS replications_by_digest ON replications (repository, digest, id);

-- Per replication, per target region: where it stands.
CREATE TABLE IF NOT EXISTS replication_regions (
  replication_id bigint      NOT NULL,
  region         text        NOT NULL,
  state          text        NOT NULL,
  blobs_copied   integer     NOT NULL DEFAULT 0,
  blobs_skipped  integer     NOT NULL DEFAULT 0,
  bytes_copied   bigint      NOT NULL DEFAULT 0,
  bytes_skipped  bigint      NOT NULL DEFAULT 0,
  tag_moved      boolean     NOT NULL DEFAULT false,
  failure        text,
  replicated_at  timestamptz,
  updated_at     timestamptz NOT NULL,
  PRIMARY KEY (replication_id, region)
);
CREATE INDEX IF NOT EXISTS replication_regions_by_state ON replication_regions (state, region);
-- state 'superseded': the push's digest landed, but a newer change holds its
-- tag in the region; superseded_by names it when known.
ALTER TABLE replication_regions ADD COLUMN IF NOT EXISTS superseded_by bigint;

-- What each region's tag points at, and which push put it there.
-- The fencing token for "no tag regression": a tag only moves forward in push
-- order, (occurred_at, replication_id): the source registry's own event time,
-- so a late or redelivered notification of an older push never wins, then the
-- order Ferry accepted them in.
CREATE TABLE IF NOT EXISTS region_tags (
  region         text        NOT NULL,
  repository     text        NOT NULL,
  tag            text        NOT NULL,
  digest         text,
  replication_id bigint      NOT NULL,
  occurred_at    timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL,
  PRIMARY KEY (region, repository, tag)
);

-- Size of the image being replicated, once its manifest graph was read.
ALTER TABLE replications ADD COLUMN IF NOT EXISTS blob_count integer;
ALTER TABLE replications ADD COLUMN IF NOT EXISTS total_blob_bytes bigint;

-- Not a projection: bytes moving inside a running region replication
-- (store/progress.ts). UNLOGGED, overwritten in place, never rebuilt.
CREATE UNLOGGED TABLE IF NOT EXISTS region_progress (
  replication_id bigint      NOT NULL,
  region         text        NOT NULL,
  bytes_done     bigint      NOT NULL,
  updated_at     timestamptz NOT NULL,
  PRIMARY KEY (replication_id, region)
);

-- Not a projection: changes recorded from a notification whose workflow has
-- not been started yet. Written in the transaction that records the change,
-- removed once Temporal accepted the start (api/accept-event.ts); the api's
-- sweeper (api/sweeper.ts) starts what stays here, so no recorded change is
-- stranded when Temporal is down or the api dies between record and start.
CREATE TABLE IF NOT EXISTS pending_starts (
  replication_id bigint      PRIMARY KEY,
  recorded_at    timestamptz NOT NULL DEFAULT now()
);

-- Not a projection: registry events Ferry acknowledged but could not read
-- (store/dead-letters.ts), kept with the reason, for `ferry dead-letters`.
-- A redelivery of one (same region, format and event id) is kept once.
CREATE TABLE IF NOT EXISTS dead_letters (
  id            bigserial   PRIMARY KEY,
  source_region text        NOT NULL,
  format        text        NOT NULL,
  event_id      text,
  code          text        NOT NULL,
  reason        text        NOT NULL,
  event         jsonb       NOT NULL,
  received_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS dead_letters_event ON dead_letters (source_region, format, event_id) WHERE event_id IS NOT NULL;

-- Not a projection: leases on copying one blob into one region
-- (store/blob-claims.ts), so a layer shared by concurrent pushes crosses once
-- per region however many workers serve the region. A row lives while its
-- holder copies; an expired one is taken over by the next claimant, which
-- notes whose lease it took (taken_over).
CREATE TABLE IF NOT EXISTS blob_claims (
  region     text        NOT NULL,
  digest     text        NOT NULL,
  holder     text        NOT NULL,
  expires_at timestamptz NOT NULL,
  taken_over text,
  PRIMARY KEY (region, digest)
);
-- A released claim stays (expired) for an hour: the next claimant knows a copy may have finished.
ALTER TABLE blob_claims ADD COLUMN IF NOT EXISTS released_at timestamptz;

-- Not a projection: a repository of a registry-API region known to hold a
-- blob (store/registry-blobs.ts), which a copy of that blob into another of its
-- repositories mounts from instead of uploading it again. A hint: a wrong
-- one costs an upload, as the registry declines the mount.
CREATE TABLE IF NOT EXISTS registry_blob_homes (
  region     text NOT NULL,
  digest     text NOT NULL,
  repository text NOT NULL,
  PRIMARY KEY (region, digest)
);
-- Not a projection: the latest Location and offset of a chunked upload into a
-- registry-API region (store/registry-blobs.ts), for the attempt that resumes it.
CREATE TABLE IF NOT EXISTS registry_uploads (
  region     text        NOT NULL,
  repository text        NOT NULL,
  digest     text        NOT NULL,
  location   text        NOT NULL,
  "offset"   bigint      NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (region, repository, digest)
);

-- Not a projection: the plans of running reconciles and backfills
-- (store/plans.ts), one row per tag, read a page at a time so that no
-- Temporal payload grows with the number of tags; dropped when the run ends.
CREATE TABLE IF NOT EXISTS plan_items (
  plan_id   text    NOT NULL,
  position  integer NOT NULL,
  item      jsonb   NOT NULL,
  PRIMARY KEY (plan_id, position)
);
-- A run that failed or was terminated never drops its plan: plans a week old go at the next plan.
ALTER TABLE plan_items ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now();
