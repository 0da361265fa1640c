// Ferry's NATS connection options against a real nats-server that asks for a
// token over mutual TLS, as a production NATS does: with the configured
// token, CA and client pair the announcer connects (and makes its stream);
// a wrong token, no client certificate or an unknown CA is refused.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAnnouncer, natsConnectOptions } from '../../activities/announce';
import { resolveConfig } from '../../domain/config';
import { STREAM_NAME } from '../../domain/subjects';
import { localEnv } from '../../support/local-env';
import { portOpen, waitUntil } from '../../support/processes';

const run = promisify(execFile);
const PORT = 14_222;
const TOKEN = 'nats-test-token-0123456789';
let folder: string;
let server: ChildProcess;

/** A CA signing a server certificate for 127.0.0.1 and a client certificate, and a CA that signed neither. */
async function certificates(): Promise<void> {
  const openssl = (...args: string[]) => run('openssl', args, { cwd: folder });
  await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=ferry-test-ca');
  await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other-ca.key', '-out', 'other-ca.pem', '-days', '1', '-subj', '/CN=other-ca');
  for (const [name, extension] of [
    ['server', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=ferry-${name}`);
    await writeFile(join(folder, `${name}.ext`), `${extension}\n`);
    await openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
  }
}

const file = (name: string) => join(folder, name);

function natsConfig(nats: object, env: Record<string, string> = { NATS_TOKEN: TOKEN }) {
  return resolveConfig({ natsUrl: `nats://127.0.0.1:${PORT}`, nats }, { ...localEnv(), ...env });
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ferry-nats-tls-'));
  await certificates();
  server = spawn(
    '/usr/sbin/nats-server',
    ['-a', '127.0.0.1', '-p', String(PORT), '-js', '-sd', file('jetstream'), '--auth', TOKEN, '--tlsverify', '--tlscert', file('server.pem'), '--tlskey', file('server.key'), '--tlscacert', file('ca.pem')],
    { stdio: 'ignore' },
  );
  await waitUntil(`nats-server with TLS on :${PORT}`, () => portOpen(PORT), 20_000);
}, 60_000);

afterAll(async () => {
  server?.kill();
  await rm(folder, { recursive: true, force: true });
});

describe('NATS with a token over mutual TLS', () => {
  const tls = () => ({ caFile: file('ca.pem'), certFile: file('client.pem'), keyFile: file('client.key') });

  it('connects the announcer with the configured token, CA and client pair, and makes its stream', async () => {
    const announcer = await connectAnnouncer(natsConfig({ tokenEnv: 'NATS_TOKEN', tls: tls() }));
    try {
      const info = await (await announcer.nats.jetstreamManager()).streams.info(STREAM_NAME);
      expect(info.config.name).toBe(STREAM_NAME);
      expect(announcer.nats.info?.tls_required ?? announcer.nats.info?.tls_verify).toBeTruthy();
    } finally {
      await announcer.nats.close();
    }
  });

  it('is refused with a wrong token, without a client certificate, or trusting another CA', async () => {
    const attempt = (options: ReturnType<typeof natsConnectOptions>) => connect({ ...options, reconnect: false, timeout: 5_000 }).then((nats) => nats.close().then(() => 'connected'), (error: Error) => error.message);
    const wrongToken = await attempt(natsConnectOptions(natsConfig({ tokenEnv: 'NATS_TOKEN', tls: tls() }, { NATS_TOKEN: 'not-the-token' })));
    const noClientCert = await attempt(natsConnectOptions(natsConfig({ tokenEnv: 'NATS_TOKEN', tls: { caFile: file('ca.pem') } })));
    const otherCa = await attempt(natsConnectOptions(natsConfig({ tokenEnv: 'NATS_TOKEN', tls: { ...tls(), caFile: file('other-ca.pem') } })));
    expect(wrongToken).toMatch(/authorization violation/i);
    // The server ends the handshake: as an alert, or a reset when it closes first.
    expect(noClientCert).toMatch(/bad certificate|certificate required|ECONNRESET/i);
    expect(otherCa).toMatch(/unable to verify/i);
  });
});
