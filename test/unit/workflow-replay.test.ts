// Determinism: histories recorded from real runs on the local stack replay
// against today's workflow code. A change that would break running
// replications (a reordered activity, a new timer) fails here; make it
// compatible with patched() or record new histories on purpose.
import { readdirSync, readFileSync } from 'node:fs';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { workflowBundle } from '../../workers/workers';

const directory = new URL('../fixtures/histories/', import.meta.url);
/** Child workflow ids derive from the parent's, so each history replays under its recorded id. */
const workflowIds: Record<string, string> = JSON.parse(readFileSync(new URL('workflow-ids.json', directory), 'utf8'));
const histories = readdirSync(directory).filter((name) => name in workflowIds);

describe('recorded workflow histories', () => {
  it('are there to replay: replicateChange pushes (one failed, one starting the push of a widened referrers index) and a delete; the earlier push, region child and delete; a reconcile whole, and paged (a run that continued as new, and the last); a paged backfill', () => {
    expect(histories.sort()).toEqual([
      'backfill-paged.json',
      'reconcile-paged-last-run.json',
      'reconcile-paged.json',
      'reconcile.json',
      'replicate-change-delete.json',
      'replicate-change-failed.json',
      'replicate-change-multi-arch.json',
      'replicate-change-referrers.json',
      'replicate-delete.json',
      'replicate-push-multi-arch.json',
      'replicate-to-region-streamed.json',
    ]);
  });

  it.each(histories)('%s replays against the current workflow code', async (name) => {
    const history = JSON.parse(readFileSync(new URL(name, directory), 'utf8'));
    await expect(Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowIds[name])).resolves.toBeUndefined();
  }, 60_000);
});
