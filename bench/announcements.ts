// Ferry's per-region messages as a deploy pipeline reads them: a JetStream
// ordered consumer on ferry.replicated.> and ferry.failed.>, from the moment
// the bench subscribed (earlier runs' messages stay in the stream). The
// stream is made the way the worker makes it, so a fresh NATS serves too.
import { consumerOpts, type NatsConnection } from 'nats';
import { connectAnnouncer } from '../activities/announce';
import type { ResolvedConfig } from '../domain/config';
import type { RegionMessage } from '../domain/subjects';

export class Announcements {
  private readonly replicated = new Map<string, RegionMessage[]>();
  private failure: RegionMessage | null = null;

  private constructor(private readonly nats: NatsConnection) {}

  static async start(ferry: Pick<ResolvedConfig, 'natsUrl' | 'nats'>): Promise<Announcements> {
    const { nats } = await connectAnnouncer(ferry);
    const announcements = new Announcements(nats);
    for (const filter of ['ferry.replicated.>', 'ferry.failed.>']) {
      // An ordered push consumer: the pull-consumer API needs NATS 2.10, Debian ships 2.9.
      const options = consumerOpts();
      options.orderedConsumer();
      options.deliverNew();
      const subscription = await nats.jetstream().subscribe(filter, options);
      void (async () => {
        for await (const message of subscription) announcements.receive(message.json<RegionMessage>());
      })();
    }
    return announcements;
  }

  /** Resolves with one `replicated` message per (image, region) of `repository`; rejects on a `failed` one or after `timeoutMs`. */
  async waitForAll(repository: string, expected: number, timeoutMs: number): Promise<RegionMessage[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.failure?.repository === repository) {
        throw new Error(`Ferry failed ${this.failure.repository}:${this.failure.tag} in ${this.failure.region}: ${this.failure.failure?.reason}`);
      }
      const received = this.replicated.get(repository) ?? [];
      if (received.length >= expected) return received;
      if (Date.now() > deadline) throw new Error(`${received.length} of ${expected} replicated messages for ${repository} within ${timeoutMs / 1000}s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async stop(): Promise<void> {
    await this.nats.close();
  }

  private receive(message: RegionMessage): void {
    if (message.kind === 'failed') this.failure = message;
    if (message.kind !== 'replicated') return;
    const list = this.replicated.get(message.repository) ?? [];
    list.push(message);
    this.replicated.set(message.repository, list);
  }
}
