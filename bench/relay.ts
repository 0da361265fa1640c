// The bench's notification relay, listening where the registries send their
// push notifications (in front of Ferry's api, which runs on another port).
//
//   forward  pass each notification to Ferry's api now, answer with its answer
//   hold     keep them, answer 202; release() later forwards them in arrival order
//   drop     answer 202 and forget them
//
// `drop` is how the skopeo baseline stays apart from Ferry: its pushes into
// the westeurope and southeastasia registries notify too, and answering them
// (instead of refusing the connection) leaves nothing queued in the registries
// to reach a later Ferry. `hold` lets a scenario push everything into eastus
// first and hand Ferry the whole set at once.
import { createServer, type IncomingMessage, type Server } from 'node:http';

export type RelayMode = 'forward' | 'hold' | 'drop';

interface Notification {
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

const FORWARDED_HEADERS = ['authorization', 'content-type'];

async function readNotification(request: IncomingMessage): Promise<Notification> {
  const chunks: Buffer[] = [];
  for await (const chunk of request as AsyncIterable<Buffer>) chunks.push(chunk);
  const headers: Record<string, string> = {};
  for (const name of FORWARDED_HEADERS) {
    const value = request.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  return { path: request.url ?? '/', headers, body: Buffer.concat(chunks) };
}

export class NotificationRelay {
  private mode: RelayMode = 'drop';
  private held: Notification[] = [];

  private constructor(
    private readonly server: Server,
    private readonly upstream: string,
  ) {}

  static async start(listen: { host: string; port: number }, upstream: string): Promise<NotificationRelay> {
    const server = createServer();
    const relay = new NotificationRelay(server, upstream);
    server.on('request', (request, response) => {
      void readNotification(request)
        .then((notification) => relay.receive(notification))
        .then(({ status, body }) => response.writeHead(status, { 'content-type': 'application/json' }).end(body))
        .catch((error: Error) => response.writeHead(503).end(error.message));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listen.port, listen.host, resolve);
    });
    return relay;
  }

  setMode(mode: RelayMode): void {
    this.mode = mode;
  }

  /** Forwards every held notification in arrival order, then forwards new ones as they come. */
  async release(): Promise<void> {
    while (this.held.length > 0) {
      const notification = this.held.shift()!;
      const { status } = await this.forward(notification);
      if (status >= 300) throw new Error(`Ferry's api answered ${status} to a released notification for ${notification.path}`);
    }
    this.mode = 'forward';
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async receive(notification: Notification): Promise<{ status: number; body: string }> {
    switch (this.mode) {
      case 'forward':
        return this.forward(notification);
      case 'hold':
        this.held.push(notification);
        return { status: 202, body: '{"held":true}' };
      case 'drop':
        return { status: 202, body: '{"dropped":true}' };
    }
  }

  private async forward(notification: Notification): Promise<{ status: number; body: string }> {
    const response = await fetch(new URL(notification.path, this.upstream), {
      method: 'POST',
      headers: notification.headers,
      body: notification.body,
    });
    return { status: response.status, body: await response.text() };
  }
}
