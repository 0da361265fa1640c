// `ferry reconcile [--repository R]... [--api URL]`: compare every region's
// tags with the event store now, repair drift, print the report. Straight on
// Temporal, or through the api's POST /v1/admin/reconcile when an api is
// named (cli/api-access.ts). Exits 0 once the reconcile completed, 1 when it
// failed, 2 on bad usage or a refusal.
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { finishedRun, requestReconcile } from '../api/client';
import { outcomeOf, reconcileScopeOf, startReconcile, type ControlRun } from '../api/control-workflows';
import { temporalConnectOptions, type ResolvedConfig } from '../domain/config';
import { InvalidReferenceError } from '../domain/reference';
import type { ReconcileScope } from '../workflows/reconcile';
import { API_OPTIONS, API_USAGE, apiAccessOf, refusalExits } from './api-access';

export const RECONCILE_USAGE = `ferry reconcile [--repository R]... ${API_USAGE}`;

async function reconcileOnTemporal(config: ResolvedConfig, scope: ReconcileScope): Promise<ControlRun<'reconcile'>> {
  const connection = await Connection.connect(temporalConnectOptions(config));
  try {
    const temporal = new Client({ connection, namespace: config.temporal.namespace });
    return await outcomeOf(temporal, 'reconcile', await startReconcile(temporal, scope));
  } finally {
    await connection.close();
  }
}

export function printRun(run: ControlRun<'reconcile'>): number {
  if (run.report === null) {
    console.error(`ferry reconcile: workflow "${run.workflowId}" ${run.status}: ${run.failure}`);
    return 1;
  }
  console.log(`reconcile: ${run.report.drifts} drift(s) found`);
  for (const repair of run.report.repaired) {
    const what =
      repair.kind === 'push'
        ? `${repair.repository}:${repair.tag} → ${repair.digest}`
        : repair.kind === 'refill'
          ? `${repair.repository}:${repair.tag} → ${repair.digest}, back into ${repair.target}, which lost it`
          : `delete ${repair.repository}:${repair.tag}`;
    console.log(`  ${repair.region}: ${what} (replication #${repair.replicationId}, workflow "${repair.workflowId}")`);
  }
  if (run.report.more) console.log(`  … and ${run.report.more} more (GET /v1/replications lists them)`);
  for (const halt of run.report.halted ?? []) {
    console.log(`  ${halt.region}: HALTED, ${halt.missing} of its ${halt.recorded} recorded tags are gone from its storage (an emptied or wrong bucket?); nothing replicated from or into it`);
  }
  // Halted regions need an operator: a non-zero exit says so to a script.
  return (run.report.halted ?? []).length === 0 ? 0 : 3;
}

export async function reconcileCommand(args: string[], config: () => ResolvedConfig): Promise<number> {
  const { values } = parseArgs({ args, options: { repository: { type: 'string', multiple: true }, ...API_OPTIONS } });
  const api = apiAccessOf(values);
  if (api) return refusalExits('reconcile', async () => printRun(await finishedRun(api, await requestReconcile(api, values.repository))));
  let scope: ReconcileScope;
  try {
    scope = reconcileScopeOf({ repositories: values.repository });
  } catch (error) {
    if (!(error instanceof InvalidReferenceError)) throw error;
    console.error(`ferry reconcile: ${error.message}\nusage: ${RECONCILE_USAGE}`);
    return 2;
  }
  return printRun(await reconcileOnTemporal(config(), scope));
}
