// `ferry backfill --repository R... | --all [--to REGION]... [--api URL]`
//
// Replicates what the regions already hold (e.g. into a region just added) as
// one Temporal workflow, and waits for it, printing its id first so its
// progress can be followed in the UI. Straight on Temporal, or through the
// api's POST /v1/admin/backfill when an api is named (cli/api-access.ts).
// Exits 0 when every tag replicated, 1 when some failed, 2 on bad usage or a
// refusal.
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { finishedRun, requestBackfill, type ApiAccess } from '../api/client';
import { backfillScopeOf, InvalidScopeError, outcomeOf, startBackfill, UnknownRegionError, type ControlRun } from '../api/control-workflows';
import type { BackfillScope } from '../domain/backfill';
import { temporalConnectOptions, type ResolvedConfig } from '../domain/config';
import { InvalidReferenceError } from '../domain/reference';
import { API_OPTIONS, API_USAGE, apiAccessOf, refusalExits } from './api-access';

export const BACKFILL_USAGE = `ferry backfill --repository R [--repository R]... | --all [--to REGION]... ${API_USAGE}`;

type BackfillFlags = { repositories?: string[]; to?: string[] };

const started = (workflowId: string) => console.log(`backfill started: workflow "${workflowId}" (follow it in the Temporal UI)`);

async function backfillOnTemporal(config: ResolvedConfig, scope: BackfillScope): Promise<ControlRun<'backfill'>> {
  const connection = await Connection.connect(temporalConnectOptions(config));
  try {
    const temporal = new Client({ connection, namespace: config.temporal.namespace });
    const handle = await startBackfill(temporal, scope);
    started(handle.workflowId);
    return await outcomeOf(temporal, 'backfill', handle);
  } finally {
    await connection.close();
  }
}

async function backfillThroughApi(api: ApiAccess, { repositories, to }: BackfillFlags): Promise<ControlRun<'backfill'>> {
  const run = await requestBackfill(api, { ...(repositories ? { repositories } : { all: true }), ...(to ? { to } : {}) });
  started(run.workflowId);
  return finishedRun(api, run);
}

function printRun(run: ControlRun<'backfill'>): number {
  if (run.report === null) {
    console.error(`ferry backfill: workflow "${run.workflowId}" ${run.status}: ${run.failure}`);
    return 1;
  }
  const report = run.report;
  console.log(`backfill: ${report.replicated} of ${report.planned} tag(s) replicated, ${report.failed.length} failed, ${report.alreadyPresent} already present everywhere`);
  for (const failure of report.failed) console.log(`  failed: ${failure.reference}: ${failure.reason}`);
  return report.failed.length === 0 ? 0 : 1;
}

function usageError(message: string): number {
  console.error(`ferry backfill: ${message}\nusage: ${BACKFILL_USAGE}`);
  return 2;
}

export async function backfillCommand(args: string[], config: () => ResolvedConfig): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { repository: { type: 'string', multiple: true }, all: { type: 'boolean' }, to: { type: 'string', multiple: true }, ...API_OPTIONS },
  });
  if (Boolean(values.all) === Boolean(values.repository)) return usageError('give --repository (one or more) or --all');
  const flags: BackfillFlags = { repositories: values.repository, to: values.to?.flatMap((value) => value.split(',')).filter(Boolean) };
  const api = apiAccessOf(values);
  if (api) return refusalExits('backfill', async () => printRun(await backfillThroughApi(api, flags)));
  const resolved = config();
  let scope: BackfillScope;
  try {
    scope = backfillScopeOf(flags, resolved.regions.map((region) => region.name));
  } catch (error) {
    if (error instanceof InvalidReferenceError || error instanceof InvalidScopeError || error instanceof UnknownRegionError) return usageError(error.message);
    throw error;
  }
  return printRun(await backfillOnTemporal(resolved, scope));
}
