// The worker process: connect, create, run.
import { NativeConnection, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { connectAnnouncer } from '../activities/announce';
import { connectStorages } from '../activities/storage';
import { loadConfig } from '../domain/config';
import { EventStore } from '../store/event-store';
import { createWorkers } from './workers';

Runtime.install({ telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) } } });
const config = loadConfig();
const store = EventStore.connect(config.postgresUrl);
await store.migrate();
const announcer = await connectAnnouncer(config.natsUrl);
const connection = await NativeConnection.connect({ address: config.temporal.address });
const workers = await createWorkers(
  { config, store, announcer, storages: connectStorages(config.regions) },
  { connection, queues: config.worker.queues },
);
await Promise.all(workers.map((worker) => worker.run()));
await Promise.all([announcer.nats.drain(), store.close(), connection.close()]);
