// The API process: ingest for registry notifications, status, waiting for regions.
import { Client, Connection } from '@temporalio/client';
import pino from 'pino';
import { loadConfig, temporalConnectOptions } from '../domain/config';
import { EventFeed } from '../store/event-feed';
import { EventStore } from '../store/event-store';
import { highestReplicationId } from '../store/recovery';
import { BackgroundStarts } from './accept-event';
import { createApiMetrics } from './metrics';
import { ensureReconcileSchedule } from './schedules';
import { buildServer } from './server';
import { startSweeper } from './sweeper';

// The api touches no region's storage or registry: it resolves none of their credentials.
const config = loadConfig(process.env, 'api');
const logger = pino({ level: config.logLevel, base: { service: 'ferry-api' } });
const store = EventStore.connect(config.postgresUrl, { name: 'ferry-api' });
const connection = await Connection.connect(temporalConnectOptions(config));
const temporal = new Client({ connection, namespace: config.temporal.namespace });
// New ids start past every replication Temporal holds, should this database be new, lost or restored.
await store.migrate(await highestReplicationId(temporal));
const reads = EventStore.connect(config.postgresUrl, { poolSize: config.ingest.readPoolSize, name: 'ferry-api-reads' });
const feed = new EventFeed(config.postgresUrl, logger);
feed.start();
await ensureReconcileSchedule(temporal, config);
const starts = new BackgroundStarts({ store, temporal, logger });
const app = await buildServer({ config, store, reads, temporal, starts, logger, feed, metrics: createApiMetrics({ config, store: reads }) });
await app.listen({ host: config.ingest.host, port: config.ingest.port });
const stopSweeper = startSweeper({ config, store, temporal, logger });

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void stopSweeper()
      .then(() => app.close())
      .then(() => starts.drain(5_000))
      .then(() => Promise.all([connection.close(), feed.close(), store.close(), reads.close()]))
      .then(() => process.exit(0));
  });
}
