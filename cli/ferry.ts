// The `ferry` command line (npm run ferry -- <command>).
//
//   ferry projections verify    fold the event log into scratch tables and diff them with the live projections
//   ferry projections rebuild   drop the projections and fold the whole event log again
import { loadConfig } from '../domain/config';
import { EventStore } from '../store/event-store';

const usage = `usage: ferry projections verify|rebuild`;

async function projections(action: string | undefined): Promise<number> {
  const store = EventStore.connect(loadConfig().postgresUrl);
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

const [command, ...rest] = process.argv.slice(2);
switch (command) {
  case 'projections':
    process.exitCode = await projections(rest[0]);
    break;
  default:
    console.error(usage);
    process.exitCode = 2;
}
