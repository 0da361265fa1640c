// What stack tests share: the local configuration, the event store, the
// `ferry` command, and a JetStream reader that sees Ferry's messages the way a
// deploy pipeline would.
import { Client, Connection } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { connect, consumerOpts, type NatsConnection } from 'nats';
import { loadConfig, temporalConnectOptions, type ResolvedConfig } from '../../domain/config';
import type { OutcomeMessage, RegionMessage } from '../../domain/subjects';
import { EventStore } from '../../store/event-store';
import { localStackEnv, repoRoot } from './env';

/** Runs `ferry <args>` as an operator would, against the local stack: its exit code and output. */
export async function ferryCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'cli/ferry.ts', ...args], { cwd: repoRoot, env: localStackEnv() });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

export function localConfig(): ResolvedConfig {
  return loadConfig(localStackEnv());
}

/** The secret of the configured token `name` (ingest-<region>, reader, admin: the local stack's, stack/local.env). */
/**
 * The regions a test's repository lives in: the storage regions. The run's
 * rules keep every repository but it-api/** out of the registry-API region
 * (test/support/env.ts TEST_RULES).
 */
export function storageRegions(config: ResolvedConfig): ResolvedConfig['regions'] {
  return config.regions.filter((region) => region.s3 !== null);
}

export function tokenOf(config: ResolvedConfig, name: string): string {
  const token = config.auth.tokens.find((candidate) => candidate.name === name);
  if (token === undefined) throw new Error(`no token named ${name}; configured: ${config.auth.tokens.map((candidate) => candidate.name).join(', ')}`);
  return token.secret;
}

/** Headers that authenticate with token `name`. */
export function bearer(config: ResolvedConfig, name: string): Record<string, string> {
  return { authorization: `Bearer ${tokenOf(config, name)}` };
}

/** A repository name no earlier run used, so every test starts from empty storage. */
export function uniqueRepository(name: string): string {
  return `it-${Date.now().toString(36)}${randomBytes(3).toString('hex')}/${name}`;
}

export function connectStore(config = localConfig()): EventStore {
  return EventStore.connect(config.postgresUrl);
}

export interface ReceivedMessage<T> {
  subject: string;
  body: T;
  receivedAt: number;
}

/**
 * Collects, through a JetStream ordered consumer (so duplicates dropped by the
 * stream's dedupe window are never seen), every message on `filter`.
 */
export class MessageCollector<T = RegionMessage | OutcomeMessage> {
  readonly messages: Array<ReceivedMessage<T>> = [];
  private waiters: Array<() => void> = [];
  private stopped = false;

  private constructor(private readonly nats: NatsConnection) {}

  static async start<T = RegionMessage | OutcomeMessage>(natsUrl: string, filter: string, onMessage?: (message: ReceivedMessage<T>) => void): Promise<MessageCollector<T>> {
    const nats = await connect({ servers: natsUrl });
    const collector = new MessageCollector<T>(nats);
    // An ordered push consumer: the pull-consumer API needs NATS 2.10, Debian ships 2.9.
    const options = consumerOpts();
    options.orderedConsumer();
    options.deliverAll();
    const messages = await nats.jetstream().subscribe(filter, options);
    void (async () => {
      for await (const message of messages) {
        const received = { subject: message.subject, body: JSON.parse(new TextDecoder().decode(message.data)) as T, receivedAt: Date.now() };
        collector.messages.push(received);
        onMessage?.(received);
        for (const wake of collector.waiters.splice(0)) wake();
        if (collector.stopped) break;
      }
    })();
    return collector;
  }

  /** Resolves once at least `count` messages arrived; rejects after `timeoutMs`. */
  async waitFor(count: number, timeoutMs: number): Promise<Array<ReceivedMessage<T>>> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`expected ${count} messages, got ${this.messages.length}: ${this.messages.map((m) => m.subject).join(', ')}`);
      }
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, Math.min(left, 500));
      });
    }
    return this.messages;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.nats.close();
  }
}

/** A Temporal client on the local stack's server, and how to close its connection. */
export async function connectTemporal(config = localConfig()): Promise<{ client: Client; close: () => Promise<void> }> {
  const connection = await Connection.connect(temporalConnectOptions(config));
  return { client: new Client({ connection }), close: () => connection.close() };
}
