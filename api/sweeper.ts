// Starts the workflows of recorded changes that have none. Ingest records a
// change, answers, then starts its workflow in the background
// (api/accept-event.ts); the start fails while Temporal is down, and an api
// that dies between record and start starts nothing.
// What was recorded stays marked in pending_starts (store/pending-starts.ts);
// every `ingest.sweepSeconds` this starts the ones at least that old. A start
// is idempotent (the workflow id is the change's), so several api processes
// may sweep at once.
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { ResolvedConfig } from '../domain/config';
import type { EventStore } from '../store/event-store';
import { overduePendingStarts } from '../store/pending-starts';
import { startRecorded } from './accept-event';

const SWEEP_BATCH = 100;

/** One sweep: starts the overdue ones; returns how many were started (or found running). */
export async function sweepPendingStarts({ config, store, temporal, logger }: { config: ResolvedConfig; store: EventStore; temporal: Client; logger: Logger }): Promise<number> {
  const recordedBefore = new Date(Date.now() - config.ingest.sweepSeconds * 1000);
  let started = 0;
  for (const request of await overduePendingStarts(store, config, recordedBefore, SWEEP_BATCH)) {
    const workflowId = await startRecorded(store, temporal, request);
    logger.warn({ replicationId: request.replicationId, workflowId }, 'started the workflow of a recorded change that had none');
    started++;
  }
  return started;
}

/** Sweeps every `ingest.sweepSeconds` until stopped; a failed sweep (Temporal still down) is logged and tried again next time. */
export function startSweeper(deps: { config: ResolvedConfig; store: EventStore; temporal: Client; logger: Logger }): () => Promise<void> {
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    running = sweepPendingStarts(deps).catch((error: unknown) => deps.logger.warn({ err: error }, 'sweeping pending workflow starts failed; next sweep retries'));
  }, deps.config.ingest.sweepSeconds * 1000);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
