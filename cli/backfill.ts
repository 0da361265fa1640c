// `ferry backfill --repository R... | --all [--to REGION]...`
//
// Replicates what the regions already hold (e.g. into a region just added) as
// one Temporal workflow, and waits for it, printing its id first so its
// progress can be followed in the UI. Exits 0 when every tag replicated, 1
// when some failed, 2 on bad usage.
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import type { ResolvedConfig } from '../domain/config';
import { parseRepositoryName } from '../domain/reference';
import type { BackfillScope } from '../domain/backfill';
import { CONTROL_TASK_QUEUE } from '../domain/workflow-contract';
import type { backfill } from '../workflows/index';

export const BACKFILL_USAGE = 'ferry backfill --repository R [--repository R]... | --all [--to REGION]...';

function parseScope(config: ResolvedConfig, args: string[]): BackfillScope {
  const { values } = parseArgs({
    args,
    options: { repository: { type: 'string', multiple: true }, all: { type: 'boolean' }, to: { type: 'string', multiple: true } },
  });
  if (Boolean(values.all) === Boolean(values.repository)) throw new Error('give --repository (one or more) or --all');
  const known = config.regions.map((region) => region.name);
  const to = values.to?.flatMap((value) => value.split(',')).filter(Boolean);
  const unknown = to?.filter((region) => !known.includes(region)) ?? [];
  if (unknown.length > 0) throw new Error(`unknown region(s) ${unknown.join(', ')}; Ferry knows ${known.join(', ')}`);
  return { ...(values.repository ? { repositories: values.repository.map((name) => parseRepositoryName(name)) } : {}), ...(to ? { to } : {}) };
}

export async function backfillCommand(config: ResolvedConfig, args: string[]): Promise<number> {
  let scope: BackfillScope;
  try {
    scope = parseScope(config, args);
  } catch (error) {
    console.error(`ferry backfill: ${(error as Error).message}\nusage: ${BACKFILL_USAGE}`);
    return 2;
  }
  const connection = await Connection.connect({ address: config.temporal.address });
  try {
    const temporal = new Client({ connection, namespace: config.temporal.namespace });
    const what = scope.repositories ? scope.repositories.join(', ') : 'all repositories';
    const workflowId = `backfill ${what}${scope.to ? ` → ${scope.to.join(', ')}` : ''} ${new Date().toISOString()}`;
    const handle = await temporal.workflow.start<typeof backfill>('backfill', {
      workflowId,
      taskQueue: CONTROL_TASK_QUEUE,
      args: [scope],
      staticSummary: `backfill ${what} into ${scope.to?.join(', ') ?? 'every region'}`,
    });
    console.log(`backfill started: workflow "${workflowId}" (follow it in the Temporal UI)`);
    const report = await handle.result();
    console.log(
      `backfill: ${report.replicated} of ${report.planned} tag(s) replicated, ${report.failed.length} failed, ${report.alreadyPresent} already present everywhere`,
    );
    for (const failure of report.failed) console.log(`  failed: ${failure.reference}: ${failure.reason}`);
    return report.failed.length === 0 ? 0 : 1;
  } finally {
    await connection.close();
  }
}
