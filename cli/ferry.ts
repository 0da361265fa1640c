// The `ferry` command line (npm run ferry -- <command>).
//
//   ferry reconcile [--repository R]...  compare every region's tags with the event store now, repair drift, print the report (cli/reconcile.ts)
//   ferry projections verify             fold the event log into scratch tables and diff them with the live projections
//   ferry projections rebuild            drop the projections and fold the whole event log again
//   ferry backfill --repository R.. | --all [--to REGION]  replicate what the regions already hold (cli/backfill.ts)
//   ferry wait REF --region R[,R]        until REF (repo:tag or repo@digest) is replicated in every region named (cli/wait.ts)
//   ferry stuck [--older-than 10m]       running replications with no progress for that long: stuck regions, activity, attempt, last failure (cli/stuck.ts)
//   ferry dead-letters [--region R]      registry events Ferry acknowledged but could not read, with the reason (cli/dead-letters.ts)
//   ferry recover [--drain-timeout 15m] [--repository R]...  rebuild the event store after its database was lost or restored (cli/recover.ts)
//
// stuck, reconcile and backfill talk to Temporal, or to Ferry's admin api with
// --api URL (or FERRY_API_URL) and an admin token (cli/api-access.ts); then
// they read no configuration, so an operator needs no database or Temporal access.
import { loadConfig, type ResolvedConfig } from '../domain/config';
import { EventStore } from '../store/event-store';
import { BACKFILL_USAGE, backfillCommand } from './backfill';
import { DEAD_LETTERS_USAGE, deadLettersCommand } from './dead-letters';
import { RECONCILE_USAGE, reconcileCommand } from './reconcile';
import { RECOVER_USAGE, recoverCommand } from './recover';
import { STUCK_USAGE, stuckCommand } from './stuck';
import { WAIT_USAGE, waitCommand } from './wait';

const usage = `usage: ${RECONCILE_USAGE} | ferry projections verify|rebuild | ${STUCK_USAGE} | ${WAIT_USAGE} | ${BACKFILL_USAGE} | ${DEAD_LETTERS_USAGE} | ${RECOVER_USAGE}`;

async function projections(config: ResolvedConfig, action: string | undefined): Promise<number> {
  const store = EventStore.connect(config.postgresUrl);
  try {
    await store.requireSchema();
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

const [command, ...rest] = process.argv.slice(2);
/**
 * Read when a command needs it: one that talks to the admin api reads none.
 * The CLI touches no region's storage and needs no api token of its own: it resolves neither.
 */
const config = (): ResolvedConfig => loadConfig(process.env, 'cli');
switch (command) {
  case 'projections':
    process.exitCode = await projections(config(), rest[0]);
    break;
  case 'reconcile':
    process.exitCode = await reconcileCommand(rest, config);
    break;
  case 'backfill':
    process.exitCode = await backfillCommand(rest, config);
    break;
  case 'wait':
    process.exitCode = await waitCommand(config(), rest);
    break;
  case 'stuck':
    process.exitCode = await stuckCommand(rest, config);
    break;
  case 'recover':
    process.exitCode = await recoverCommand(rest, config);
    break;
  case 'dead-letters':
    process.exitCode = await deadLettersCommand(config(), rest);
    break;
  default:
    console.error(usage);
    process.exitCode = 2;
}
