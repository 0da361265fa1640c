// The worker process: connect, create, run; metrics on worker.metrics, JSON logs on stdout.
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import pino from 'pino';
import { connectAnnouncer } from '../activities/announce';
import { createWorkerMetrics } from '../activities/metrics';
import { connectStorages } from '../activities/storage';
import { loadConfig, temporalConnectOptions } from '../domain/config';
import { EventStore } from '../store/event-store';
import { highestReplicationId } from '../store/recovery';
import { installRuntime, startMetricsServer } from './telemetry';
import { createWorkers } from './workers';

// Only the storage and registry credentials of the regions this worker's queues serve, and of their sources.
const config = loadConfig(process.env, 'worker');

/** The highest replication id Temporal holds: new ids start past it (store/recovery.ts). */
async function replicationIdFloor(): Promise<number> {
  const connection = await Connection.connect(temporalConnectOptions(config));
  try {
    return await highestReplicationId(new Client({ connection, namespace: config.temporal.namespace }));
  } finally {
    await connection.close();
  }
}
const logger = pino({ level: config.logLevel, base: { service: 'ferry-worker' } });
installRuntime(config, logger);
const metrics = createWorkerMetrics();
const metricsServer = startMetricsServer(config, metrics, logger);
const store = EventStore.connect(config.postgresUrl);
await store.migrate(await replicationIdFloor());
const announcer = await connectAnnouncer(config);
const connection = await NativeConnection.connect(temporalConnectOptions(config));
const workers = await createWorkers(
  { config, store, announcer, metrics, storages: connectStorages(config.regions, config.replication.requestIdleSeconds * 1000) },
  { connection, queues: config.worker.queues },
);
await Promise.all(workers.map((worker) => worker.run()));
metricsServer.close();
await Promise.all([announcer.nats.drain(), store.close(), connection.close()]);
