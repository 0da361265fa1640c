// The `ferry` command line (npm run ferry -- <command>).
//
//   ferry reconcile [--repository R]...  compare every region's tags with the event store now, repair drift, print the report
//   ferry projections verify             fold the event log into scratch tables and diff them with the live projections
//   ferry projections rebuild            drop the projections and fold the whole event log again
//   ferry backfill --repository R.. | --all [--to REGION]  replicate what the regions already hold (cli/backfill.ts)
//   ferry wait REF --region R[,R]        until REF (repo:tag or repo@digest) is replicated in every region named (cli/wait.ts)
//   ferry stuck [--older-than 10m]       running replications with no progress for that long: stuck regions, activity, attempt, last failure
//   ferry dead-letters [--region R]      registry events Ferry acknowledged but could not read, with the reason (cli/dead-letters.ts)
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { loadConfig, type ResolvedConfig } from '../domain/config';
import { CONTROL_TASK_QUEUE } from '../domain/workflow-contract';
import { EventStore } from '../store/event-store';
import type { reconcile } from '../workflows/index';
import { BACKFILL_USAGE, backfillCommand } from './backfill';
import { DEAD_LETTERS_USAGE, deadLettersCommand } from './dead-letters';
import { stuckCommand } from './stuck';
import { WAIT_USAGE, waitCommand } from './wait';

const usage = `usage: ferry reconcile [--repository R]... | ferry projections verify|rebuild | ferry stuck [--older-than 10m] | ${WAIT_USAGE} | ${BACKFILL_USAGE} | ${DEAD_LETTERS_USAGE}`;

async function projections(config: ResolvedConfig, action: string | undefined): Promise<number> {
  const store = EventStore.connect(config.postgresUrl);
  try {
    await store.migrate();
    if (action === 'rebuild') {
      const folded = await store.rebuildProjections();
      console.log(`rebuilt projections from ${folded} events`);
      return 0;
    }
    if (action === 'verify') {
      const differences = await store.diffRebuiltProjections();
      for (const difference of differences) {
        console.log(`${difference.table}: ${difference.onlyLive.length} rows only live, ${difference.onlyRebuilt.length} only rebuilt`);
      }
      console.log(differences.length === 0 ? 'projections equal the event log' : 'projections differ from the event log');
      return differences.length === 0 ? 0 : 1;
    }
    console.error(usage);
    return 2;
  } finally {
    await store.close();
  }
}

async function reconcileNow(config: ResolvedConfig, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { repository: { type: 'string', multiple: true } } });
  const connection = await Connection.connect({ address: config.temporal.address });
  try {
    const temporal = new Client({ connection, namespace: config.temporal.namespace });
    const report = await temporal.workflow.execute<typeof reconcile>('reconcile', {
      workflowId: `reconcile (manual) ${new Date().toISOString()}`,
      taskQueue: CONTROL_TASK_QUEUE,
      args: [values.repository ? { repositories: values.repository } : {}],
    });
    console.log(`reconcile: ${report.drifts} drift(s) found`);
    for (const repair of report.repaired) {
      const what = repair.kind === 'push' ? `${repair.repository}:${repair.tag} → ${repair.digest}` : `delete ${repair.repository}:${repair.tag}`;
      console.log(`  ${repair.region}: ${what} (replication #${repair.replicationId}, workflow "${repair.workflowId}")`);
    }
    return 0;
  } finally {
    await connection.close();
  }
}

const [command, ...rest] = process.argv.slice(2);
const config = loadConfig();
switch (command) {
  case 'projections':
    process.exitCode = await projections(config, rest[0]);
    break;
  case 'reconcile':
    process.exitCode = await reconcileNow(config, rest);
    break;
  case 'backfill':
    process.exitCode = await backfillCommand(config, rest);
    break;
  case 'wait':
    process.exitCode = await waitCommand(config, rest);
    break;
  case 'stuck':
    process.exitCode = await stuckCommand(config, rest);
    break;
  case 'dead-letters':
    process.exitCode = await deadLettersCommand(config, rest);
    break;
  default:
    console.error(usage);
    process.exitCode = 2;
}
