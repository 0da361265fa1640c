// `ferry recover [--drain-timeout 15m] [--repository R]...`: rebuild Ferry's event store after
// its database was lost, or restored from an older backup (README "Disaster
// recovery"). Talks to Postgres and Temporal; the control worker must run.
//   1. creates the schema if missing and floors the event sequence past every
//      replication id Temporal holds (no new change reuses an old one's id);
//   2. records again the observation of every replication still running;
//   3. waits until those finished (`--drain-timeout`), so storage no longer
//      moves under the next step;
//   4. runs a reconcile that first records what storage holds wherever every
//      region agrees, then repairs the rest as any reconcile does (only in
//      the repositories named, when some are: a recovery in stages; the rest
//      is left to the next reconcile, which reads whatever has no record as
//      changes to replicate).
// Every step is idempotent: run it again after a failure or a timeout.
// Exits 0 once recovered, 1 when the drain or the reconcile did not finish,
// 2 on bad usage, 3 when reconcile halted a region.
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { outcomeOf, reconcileScopeOf, startReconcile } from '../api/control-workflows';
import type { ReconcileScope } from '../workflows/reconcile';
import { temporalConnectOptions, type ResolvedConfig } from '../domain/config';
import { parseDuration } from '../domain/duration';
import { searchAttributes } from '../domain/workflow-contract';
import { EventStore } from '../store/event-store';
import { highestReplicationId, reinstateObservation, runningReplications } from '../store/recovery';
import { printRun } from './reconcile';

export const RECOVER_USAGE = 'ferry recover [--drain-timeout 15m] [--repository R]...';

const log = (line: string) => console.log(`recover: ${line}`);

/** Waits until no replication with an id up to `floor` runs; false at the deadline. */
async function drained(temporal: Client, floor: number, timeoutMs: number): Promise<boolean> {
  const query = `ExecutionStatus = 'Running' AND ${searchAttributes.replicationId.name} >= 1 AND ${searchAttributes.replicationId.name} <= ${floor}`;
  const deadline = Date.now() + timeoutMs;
  let told = 0;
  for (;;) {
    const { count } = await temporal.workflow.count(query);
    if (count === 0) return true;
    if (Date.now() > deadline) {
      log(`${count} replication(s) still running after ${timeoutMs / 1000} s: see \`ferry stuck\`, then run \`ferry recover\` again`);
      return false;
    }
    if (Date.now() - told > 10_000) {
      log(`waiting for ${count} running replication(s) to finish`);
      told = Date.now();
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

export async function recoverCommand(args: string[], config: () => ResolvedConfig): Promise<number> {
  let drainMs: number;
  let scope: ReconcileScope;
  try {
    const { values } = parseArgs({ args, options: { 'drain-timeout': { type: 'string', default: '15m' }, repository: { type: 'string', multiple: true } } });
    drainMs = parseDuration(values['drain-timeout']);
    scope = reconcileScopeOf({ repositories: values.repository });
  } catch (error) {
    console.error(`ferry recover: ${(error as Error).message}\nusage: ${RECOVER_USAGE}`);
    return 2;
  }
  const settings = config();
  const connection = await Connection.connect(temporalConnectOptions(settings));
  const store = EventStore.connect(settings.postgresUrl, { name: 'ferry-recover' });
  try {
    const temporal = new Client({ connection, namespace: settings.temporal.namespace });
    const floor = await highestReplicationId(temporal);
    await store.migrate(floor);
    log(`schema ready; new replication ids continue after #${floor}, the highest Temporal holds`);
    const running = await runningReplications(temporal);
    let reinstated = 0;
    for (const request of running) if (await reinstateObservation(store, request)) reinstated += 1;
    log(`${running.length} replication(s) running in Temporal, ${reinstated} of them recorded again`);
    if (!(await drained(temporal, floor, drainMs))) return 1;
    const recovery = `recover ${new Date().toISOString()}`;
    log('reconciling every region with what its storage holds');
    const run = await outcomeOf(temporal, 'reconcile', await startReconcile(temporal, { ...scope, recovery }));
    const exit = printRun(run);
    if (exit === 0) log('recovered');
    return exit;
  } finally {
    await Promise.all([store.close(), connection.close()]);
  }
}
