// The token server of a token-login registry of the local stack (centralus):
// Distribution's bearer-token flow (https://distribution.github.io/distribution/spec/auth/token/).
// The registry answers an unauthenticated request 401 with
// `WWW-Authenticate: Bearer realm=<this>/token,service=…,scope=…`; the client
// asks here, `GET /token?service=…&scope=…` (scope may repeat, or hold several
// separated by spaces) with its user and password as HTTP Basic auth, and gets
// a JWT (RS256) granting every action it asked for on each repository (and
// `registry:catalog`) scope; the registry checks its signature against the
// JWKS this server writes, its issuer and its audience (the service).
//
// One user, a throwaway login for a loopback stack: no per-repository rights.
//
//   node --import tsx stack/token-server.ts
//
// configured by environment (stack/components.ts `tokenServer`, docker-compose.yml):
//   TOKEN_SERVER_ADDR       host:port to listen on (the local stack: 127.0.0.1 only)
//   TOKEN_SERVER_KEY_DIR    where the signing key (key.pem) and the registry's JWKS (jwks.json) live;
//                           the key is generated there on first start and kept
//   TOKEN_SERVER_ISSUER     the tokens' `iss`, the registry's auth.token.issuer
//   TOKEN_SERVER_SERVICE    the tokens' `aud`, the registry's auth.token.service
//   TOKEN_SERVER_USERNAME, TOKEN_SERVER_PASSWORD   the one login it accepts
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, timingSafeEqual, type KeyObject } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { pathToFileURL } from 'node:url';

/** How long a token is valid; the registry allows another 60 s of clock skew. */
export const TOKEN_SECONDS = 300;
const ACTIONS = new Set(['pull', 'push', 'delete', '*']);
const RESOURCE_TYPES = new Set(['repository', 'registry']);

export interface SigningKey {
  privateKey: KeyObject;
  /** The key's ID in the JWKS and in each token's header: its RFC 7638 thumbprint. */
  kid: string;
  /** The JWKS the registry trusts (auth.token.jwks). */
  jwksPath: string;
}

/** RFC 7638 thumbprint of an RSA public key, as Distribution's GetJWKThumbprint computes it. */
function thumbprint(jwk: { e?: string; n?: string }): string {
  return createHash('sha256').update(`{"e":"${jwk.e}","kty":"RSA","n":"${jwk.n}"}`).digest('base64url');
}

/**
 * The signing key in `dir`, generated when missing (written aside and linked
 * into place, so two processes starting at once agree on one key), and the
 * JWKS derived from it, rewritten each time so the two never disagree.
 */
export function ensureSigningKey(dir: string): SigningKey {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keyPath = `${dir}/key.pem`;
  if (!existsSync(keyPath)) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const staging = `${keyPath}.${process.pid}`;
    writeFileSync(staging, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    try {
      linkSync(staging, keyPath);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      rmSync(staging, { force: true });
    }
  }
  const privateKey = createPrivateKey(readFileSync(keyPath));
  const publicJwk = createPublicKey(privateKey).export({ format: 'jwk' });
  const kid = thumbprint(publicJwk);
  const jwksPath = `${dir}/jwks.json`;
  const staging = `${jwksPath}.${process.pid}`;
  writeFileSync(staging, JSON.stringify({ keys: [{ ...publicJwk, kid, alg: 'RS256', use: 'sig' }] }, null, 2) + '\n');
  renameSync(staging, jwksPath);
  return { privateKey, kid, jwksPath };
}

export interface ResourceActions {
  type: string;
  name: string;
  actions: string[];
}

/**
 * The access a token grants for the requested scopes
 * (`type[(class)]:name:action[,action]`; a name may hold a colon, a host:port):
 * every known action asked for, per repository or registry resource, merged
 * when one is asked twice. Unknown types and actions are left out.
 */
export function grantedAccess(scopes: string[]): ResourceActions[] {
  const granted = new Map<string, ResourceActions>();
  for (const scope of scopes.flatMap((value) => value.split(' ')).filter((value) => value !== '')) {
    const first = scope.indexOf(':');
    const last = scope.lastIndexOf(':');
    if (first < 0 || last === first) continue;
    const type = scope.slice(0, first).replace(/\(.*\)$/, '');
    const name = scope.slice(first + 1, last);
    const actions = scope.slice(last + 1).split(',').filter((action) => ACTIONS.has(action));
    if (!RESOURCE_TYPES.has(type) || name === '' || actions.length === 0) continue;
    const key = `${type}:${name}`;
    const entry = granted.get(key) ?? { type, name, actions: [] };
    for (const action of actions) if (!entry.actions.includes(action)) entry.actions.push(action);
    granted.set(key, entry);
  }
  return [...granted.values()];
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A JWT in the Distribution token spec's shape (https://distribution.github.io/distribution/spec/auth/jwt/), signed RS256. */
export function issueToken(key: SigningKey, claims: { issuer: string; subject: string; service: string; access: ResourceActions[] }, now = new Date()): string {
  const seconds = Math.floor(now.getTime() / 1000);
  const header = { typ: 'JWT', alg: 'RS256', kid: key.kid };
  const payload = {
    iss: claims.issuer,
    sub: claims.subject,
    aud: claims.service,
    exp: seconds + TOKEN_SECONDS,
    nbf: seconds,
    iat: seconds,
    jti: randomUUID(),
    access: claims.access,
  };
  const signed = `${base64url(header)}.${base64url(payload)}`;
  return `${signed}.${sign('sha256', Buffer.from(signed), key.privateKey).toString('base64url')}`;
}

export interface TokenServerOptions {
  key: SigningKey;
  issuer: string;
  service: string;
  username: string;
  password: string;
}

const sameSecret = (given: string, expected: string) =>
  timingSafeEqual(createHash('sha256').update(given).digest(), createHash('sha256').update(expected).digest());

/** The user whose Basic credentials match the one login, else null. */
function authenticated(request: IncomingMessage, options: TokenServerOptions): string | null {
  const [scheme, encoded] = (request.headers.authorization ?? '').split(' ');
  if (scheme?.toLowerCase() !== 'basic' || encoded === undefined) return null;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  const [username, password] = [decoded.slice(0, colon), decoded.slice(colon + 1)];
  // Both compared, always, so the time taken tells nothing of which was wrong.
  const userMatches = sameSecret(username, options.username);
  const passwordMatches = sameSecret(password, options.password);
  return userMatches && passwordMatches ? username : null;
}

function reply(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  response.end(JSON.stringify(body) + '\n');
}

const failure = (code: string, message: string) => ({ errors: [{ code, message }] });

export function handleRequest(request: IncomingMessage, response: ServerResponse, options: TokenServerOptions, log: (line: string) => void = () => {}): void {
  const url = new URL(request.url ?? '/', 'http://token-server');
  if (url.pathname === '/health') return reply(response, 200, { ok: true });
  if (url.pathname !== '/token') return reply(response, 404, failure('NOT_FOUND', `no route ${url.pathname}`));
  if (request.method !== 'GET') return reply(response, 405, failure('UNSUPPORTED', 'GET /token only'), { allow: 'GET' });
  const service = url.searchParams.get('service') ?? options.service;
  if (service !== options.service) return reply(response, 400, failure('UNSUPPORTED', `tokens are issued for service ${options.service}, not ${service}`));
  const subject = authenticated(request, options);
  if (subject === null) {
    log(`401 ${request.socket.remoteAddress}: ${request.headers.authorization === undefined ? 'no login' : 'bad login'}`);
    return reply(response, 401, failure('UNAUTHORIZED', 'a valid login is required'), { 'www-authenticate': `Basic realm="${options.issuer}"` });
  }
  const access = grantedAccess(url.searchParams.getAll('scope'));
  const now = new Date();
  const token = issueToken(options.key, { issuer: options.issuer, subject, service, access }, now);
  log(`200 ${subject}: ${access.map((entry) => `${entry.type}:${entry.name}:${entry.actions.join(',')}`).join(' ') || '(no scope)'}`);
  reply(response, 200, { token, access_token: token, expires_in: TOKEN_SECONDS, issued_at: now.toISOString() });
}

function requiredEnv(env: Record<string, string | undefined>, name: string): string {
  const value = env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
}

async function main(env: Record<string, string | undefined>): Promise<void> {
  const address = requiredEnv(env, 'TOKEN_SERVER_ADDR');
  const host = address.slice(0, address.lastIndexOf(':'));
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  const options: TokenServerOptions = {
    key: ensureSigningKey(requiredEnv(env, 'TOKEN_SERVER_KEY_DIR')),
    issuer: requiredEnv(env, 'TOKEN_SERVER_ISSUER'),
    service: requiredEnv(env, 'TOKEN_SERVER_SERVICE'),
    username: requiredEnv(env, 'TOKEN_SERVER_USERNAME'),
    password: requiredEnv(env, 'TOKEN_SERVER_PASSWORD'),
  };
  const log = (line: string) => console.log(`${new Date().toISOString()} token-server: ${line}`);
  const server = createServer((request, response) => handleRequest(request, response, options, log));
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  log(`listening on ${address} (issuer ${options.issuer}, service ${options.service}, key ${options.key.kid})`);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => server.close(() => process.exit(0)));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.env).catch((error: Error) => {
    console.error(`token-server: error: ${error.message}`);
    process.exit(1);
  });
}
