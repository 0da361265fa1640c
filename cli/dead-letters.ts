// `ferry dead-letters [--region R] [--limit N]`: the registry events Ferry
// acknowledged but could not read, newest first, with the reason and the event
// as the registry sent it (store/dead-letters.ts).
import { parseArgs } from 'node:util';
import { regionByName, type ResolvedConfig } from '../domain/config';
import { listDeadLetters } from '../store/dead-letters';
import { EventStore } from '../store/event-store';

export const DEAD_LETTERS_USAGE = 'ferry dead-letters [--region R] [--limit 50]';

export async function deadLettersCommand(config: ResolvedConfig, args: string[]): Promise<number> {
  let values: { region?: string; limit?: string };
  try {
    ({ values } = parseArgs({ args, options: { region: { type: 'string' }, limit: { type: 'string', default: '50' } } }));
  } catch (error) {
    console.error(`${(error as Error).message}\nusage: ${DEAD_LETTERS_USAGE}`);
    return 2;
  }
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) {
    console.error(`--limit must be a positive whole number, got ${values.limit}`);
    return 2;
  }
  if (values.region !== undefined && !regionByName(config, values.region)) {
    console.error(`region "${values.region}" is not configured (known: ${config.regions.map((region) => region.name).join(', ')})`);
    return 2;
  }
  const store = EventStore.connect(config.postgresUrl);
  try {
    await store.requireSchema();
    const letters = await listDeadLetters(store.pool, { sourceRegion: values.region, limit });
    for (const letter of letters) {
      console.log(`${letter.receivedAt.toISOString()}  ${letter.sourceRegion} (${letter.format})  event ${letter.eventId ?? '(no id)'}  ${letter.code}: ${letter.reason}`);
      console.log(`  ${JSON.stringify(letter.event)}`);
    }
    console.log(`${letters.length} dead letter(s)${values.region === undefined ? '' : ` from ${values.region}`}`);
    return 0;
  } finally {
    await store.close();
  }
}
