// How each component of the local stack starts: its command line, its
// rendered configuration (.stack/conf), its environment and when it is ready.
// stack/supervise.ts decides which to start; support/processes.ts runs them.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { CONTROL_TASK_QUEUE, regionTaskQueue, searchAttributeFlags } from '../domain/workflow-contract';
import { ensureDatabase } from '../store/databases';
import { ferrySpec, portOpen, repoRoot, RUN_DIR, waitUntil, type ProcessSpec, type Readiness } from '../support/processes';
import { ensureSigningKey } from './token-server';
import type { LocalRegion, RegistryLogin, S3Endpoint, TokenServer, Topology } from './topology';

export const BIN_DIR = `${repoRoot}.stack/bin`;
const CONF_DIR = `${repoRoot}.stack/conf`;
const DATA_DIR = `${repoRoot}.stack/data`;
export const START_TIMEOUT_MS = Number(process.env.FERRY_STACK_START_TIMEOUT ?? 90) * 1000;
/** The Temporal server the pinned CLI embeds, run on Postgres when FERRY_TEMPORAL_STORE=postgres; stack/stack.sh builds it. */
export const TEMPORAL_SERVER_VERSION = 'v1.29.1';

export type Env = Record<string, string | undefined>;

/** A component: what runs, and when it counts as ready. */
export interface Component {
  spec: ProcessSpec;
  address: string | null;
  check?: () => Promise<boolean>;
  /** Set-up needed only when the process is started here (not when it already runs). */
  prepare?: () => void;
}

export const readiness = (component: Component, startedHere: boolean): Readiness => ({
  address: component.address,
  check: component.check,
  timeoutMs: START_TIMEOUT_MS,
  startedHere,
});

/** Replaces every {{KEY}} of `template`; the output may hold secrets, so it is private to the owner. */
function render(template: string, output: string, values: Record<string, string | number>): string {
  let text = readFileSync(`${repoRoot}stack/${template}`, 'utf8');
  for (const [key, value] of Object.entries(values)) text = text.replaceAll(`{{${key}}}`, String(value));
  if (text.includes('{{')) throw new Error(`${output}: a placeholder of stack/${template} has no value`);
  mkdirSync(CONF_DIR, { recursive: true });
  const path = `${CONF_DIR}/${output}`;
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

const requireEnv = (env: Env, name: string) => {
  const value = env[name];
  if (value === undefined) throw new Error(`${name} is not set (stack/local.env sets it for the local stack)`);
  return value;
};

const temporalCli = (topology: Topology, ...args: string[]) =>
  execFileSync(`${BIN_DIR}/temporal`, [...args, '--address', topology.temporalAddress], { stdio: 'pipe', encoding: 'utf8' });

const temporalHealthy = (topology: Topology) => async () => {
  temporalCli(topology, 'operator', 'cluster', 'health');
  return true;
};

export function temporalDev(topology: Topology, env: Env): Component {
  const [, port] = topology.temporalAddress.split(':');
  // Search attributes are declared in domain/workflow-contract.ts; start-dev registers them with a new database.
  const attributes = searchAttributeFlags().flatMap((flag) => ['--search-attribute', flag]);
  // Settings that make the dev server fair to measure (issue 10): SQLite in WAL
  // mode (readers stop blocking the writer; state still survives restarts), and
  // the search-attribute cache no longer re-read from the database on every
  // visibility write (start-dev forces that so new attributes show at once;
  // ours are registered before any workflow starts).
  const args = [
    'server', 'start-dev', '--ip', '127.0.0.1', '--port', port!, '--ui-port', topology.temporalUiAddress.split(':')[1]!,
    '--db-filename', `${DATA_DIR}/temporal.db`, '--namespace', 'default', '--log-level', 'warn',
    '--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=NORMAL',
    '--dynamic-config-value', 'system.forceSearchAttributesCacheRefreshOnRead=false',
    ...attributes,
  ];
  mkdirSync(DATA_DIR, { recursive: true });
  const healthy = temporalHealthy(topology);
  return {
    spec: { name: 'temporal', command: `${BIN_DIR}/temporal`, args, env },
    address: topology.temporalAddress,
    check: async () => {
      await healthy();
      if (await portOpen(topology.temporalUiAddress)) return true;
      throw new Error(`the Temporal UI does not answer on ${topology.temporalUiAddress} (a server started with FERRY_TEMPORAL_STORE=postgres serves none: switch with \`npm run stack -- down\` first)`);
    },
  };
}

/**
 * FERRY_TEMPORAL_STORE=postgres: the Temporal server as production runs it, on
 * the machine's Postgres (databases temporal and temporal_visibility), for
 * measuring it beside the dev server (README "Benchmark"). Sets up its schema,
 * which ships in the server module stack/stack.sh built.
 */
export function temporalOnPostgres(topology: Topology, env: Env): Component {
  const [host, port] = topology.postgresAddress.split(':');
  const prepare = () => {
    const modules = execFileSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8', env: { ...env, PATH: `${env.PATH}:/usr/local/go/bin` } }).trim();
    const schema = `${modules}/go.temporal.io/server@${TEMPORAL_SERVER_VERSION}/schema/postgresql/v12`;
    if (!existsSync(schema)) throw new Error(`the Temporal schema is not in the Go module cache (${schema})`);
    const sqlTool = (...args: string[]) =>
      execFileSync(`${BIN_DIR}/temporal-sql-tool`, ['--plugin', 'postgres12', '--ep', host!, '-p', port!, '-u', 'postgres', ...args], { stdio: 'pipe' });
    for (const [database, dir] of [['temporal', 'temporal'], ['temporal_visibility', 'visibility']] as const) {
      for (const setup of [['create-database'], ['setup-schema', '-v', '0.0']]) {
        try {
          sqlTool('--db', database, ...setup);
        } catch {
          // exists already
        }
      }
      sqlTool('--db', database, 'update-schema', '-d', `${schema}/${dir}/versioned`);
    }
    mkdirSync(`${CONF_DIR}/temporal-postgres`, { recursive: true });
    render('temporal-postgres.yaml.tmpl', 'temporal-postgres/postgres.yaml', {
      POSTGRES_HOST: host!,
      POSTGRES_PORT: port!,
      FRONTEND_PORT: topology.temporalAddress.split(':')[1]!,
      DYNAMIC_CONFIG: `${repoRoot}stack/temporal-dynamic-config.yaml`,
    });
  };
  const healthy = temporalHealthy(topology);
  return {
    spec: {
      name: 'temporal',
      command: `${BIN_DIR}/temporal-server`,
      args: ['--root', '/', '--config', `${CONF_DIR}/temporal-postgres`, '--env', 'postgres', '--allow-no-auth', 'start'],
      env,
    },
    address: topology.temporalAddress,
    check: async () => {
      await healthy();
      try {
        temporalCli(topology, 'operator', 'namespace', 'describe', '-n', 'default');
      } catch {
        temporalCli(topology, 'operator', 'namespace', 'create', '-n', 'default', '--retention', '72h');
      }
      return true;
    },
    prepare,
  };
}

/**
 * Registers every search attribute domain/workflow-contract.ts declares that the
 * namespace lacks: start-dev registers its flags only with a new database, and
 * an attribute added since (a rename, say) must exist before workflows set it.
 */
export async function registerSearchAttributes(topology: Topology, log: (line: string) => void): Promise<void> {
  let registered = '';
  // Right after a start the frontend may answer health before the namespace is loaded.
  await waitUntil('listing Temporal\'s search attributes', async () => {
    try {
      registered = temporalCli(topology, 'operator', 'search-attribute', 'list', '-n', 'default');
      return true;
    } catch {
      return false;
    }
  }, START_TIMEOUT_MS);
  for (const flag of searchAttributeFlags()) {
    const [name, type] = flag.split('=') as [string, string];
    if (new RegExp(`\\b${name}\\b`).test(registered)) continue;
    log(`registering search attribute ${name} (${type})`);
    temporalCli(topology, 'operator', 'search-attribute', 'create', '--name', name, '--type', type, '-n', 'default');
  }
}

export function s3Server(endpoint: S3Endpoint, env: Env): Component {
  const data = `${DATA_DIR}/${endpoint.name}`;
  mkdirSync(data, { recursive: true });
  const address = `127.0.0.1:${endpoint.serverPort}`;
  return {
    spec: {
      name: endpoint.name,
      command: `${BIN_DIR}/versitygw`,
      args: ['--port', address, '--quiet', '--health', '/health', 'posix', data],
      // Root credentials through the environment, so they stay out of `ps` and the log.
      env: { ...env, ROOT_ACCESS_KEY_ID: requireEnv(env, endpoint.accessKeyIdEnv), ROOT_SECRET_ACCESS_KEY: requireEnv(env, endpoint.secretAccessKeyEnv) },
    },
    address,
  };
}

/**
 * toxiproxy in front of each proxied S3 endpoint: a plain TCP relay until a
 * test adds toxics (latency, bandwidth) through its API on apiAddress.
 */
export function toxiproxy(topology: Topology, env: Env): Component {
  const { apiAddress, proxies } = topology.faultProxy;
  mkdirSync(CONF_DIR, { recursive: true });
  const config = `${CONF_DIR}/toxiproxy.json`;
  writeFileSync(config, JSON.stringify(proxies.map((proxy) => ({ ...proxy, enabled: true })), null, 2));
  const [host, port] = apiAddress.split(':');
  return {
    spec: { name: 'toxiproxy', command: `${BIN_DIR}/toxiproxy`, args: ['-host', host!, '-port', port!, '-config', config], env },
    // Ready when its API answers; stack/supervise.ts then enables each proxy and waits for it to listen.
    address: apiAddress,
  };
}

/** An htpasswd file (bcrypt, as Distribution requires) holding the region's one login. */
function htpasswdFile(region: LocalRegion, login: RegistryLogin, env: Env): string {
  const line = execFileSync('htpasswd', ['-Bbn', requireEnv(env, login.usernameEnv), requireEnv(env, login.passwordEnv)], { encoding: 'utf8' });
  mkdirSync(CONF_DIR, { recursive: true });
  const path = `${CONF_DIR}/htpasswd-${region.name}`;
  writeFileSync(path, line.trim() + '\n', { mode: 0o600 });
  return path;
}

/** Where a token server keeps its signing key and the JWKS its registry trusts. */
const tokenKeyDir = (server: TokenServer) => `${CONF_DIR}/${server.name}`;

/**
 * The token server of a token-login region (stack/token-server.ts), on
 * 127.0.0.1 only, accepting the region's one login; started before its
 * registry. Its signing key is made on first start and kept in .stack/conf.
 */
export function tokenServer(region: LocalRegion, env: Env): Component {
  if (region.login?.kind !== 'token') throw new Error(`${region.name}: its registry takes no tokens`);
  const { tokenServer: server, usernameEnv, passwordEnv } = region.login;
  const address = `127.0.0.1:${server.port}`;
  return {
    spec: {
      name: server.name,
      command: process.execPath,
      args: ['--import', 'tsx', 'stack/token-server.ts'],
      // The login through the environment, so it stays out of `ps` and the log.
      env: {
        ...env,
        TOKEN_SERVER_ADDR: address,
        TOKEN_SERVER_KEY_DIR: tokenKeyDir(server),
        TOKEN_SERVER_ISSUER: server.issuer,
        TOKEN_SERVER_SERVICE: server.service,
        TOKEN_SERVER_USERNAME: requireEnv(env, usernameEnv),
        TOKEN_SERVER_PASSWORD: requireEnv(env, passwordEnv),
      },
    },
    address,
    check: async () => (await fetch(`http://${address}/health`)).ok,
  };
}

/** Distribution's token access controller, as REGISTRY_AUTH_TOKEN_* overrides: the realm to send clients to, and what a token must carry. */
export function tokenAuthEnv(server: TokenServer, jwksPath: string, realm = server.realm): Env {
  return {
    REGISTRY_AUTH_TOKEN_REALM: realm,
    REGISTRY_AUTH_TOKEN_SERVICE: server.service,
    REGISTRY_AUTH_TOKEN_ISSUER: server.issuer,
    // Trusted by key ID (the token header's kid); no certificate bundle is needed when a JWKS is given.
    REGISTRY_AUTH_TOKEN_JWKS: jwksPath,
    REGISTRY_AUTH_TOKEN_SIGNINGALGORITHMS: '[RS256]',
  };
}

export function registry(topology: Topology, region: LocalRegion, env: Env): Component {
  const address = `127.0.0.1:${region.registryPort}`;
  const config = render('registry.yml.tmpl', `registry-${region.name}.yml`, {
    REGION: region.name,
    HTTP_ADDR: address,
    HTTP_SECRET: `ferry-local-${region.name}`,
    S3_ENDPOINT: `http://127.0.0.1:${region.s3.port}`,
    S3_BUCKET: region.bucket,
    S3_ACCESS_KEY: requireEnv(env, region.s3.accessKeyIdEnv),
    S3_SECRET_KEY: requireEnv(env, region.s3.secretAccessKeyEnv),
    NOTIFICATION_URL: `http://${topology.ingestAddress}/v1/notifications/distribution/${region.name}`,
    INGEST_TOKEN: requireEnv(env, region.ingestTokenEnv),
  });
  // AWS_CA_BUNDLE makes the S3 driver panic at start (DESIGN.md); traces would go to an absent collector.
  const registryEnv: Env = { ...env, OTEL_TRACES_EXPORTER: 'none' };
  delete registryEnv.AWS_CA_BUNDLE;
  if (region.login?.kind === 'basic') {
    // Pulls and pushes need the login; Ferry's pull check answers the Basic challenge (activities/registry-client.ts).
    registryEnv.REGISTRY_AUTH_HTPASSWD_REALM = `ferry-${region.name}`;
    registryEnv.REGISTRY_AUTH_HTPASSWD_PATH = htpasswdFile(region, region.login, env);
  } else if (region.login?.kind === 'token') {
    // Every request needs a token from the region's token server (the login exchanged there); the JWKS is its key's.
    Object.assign(registryEnv, tokenAuthEnv(region.login.tokenServer, ensureSigningKey(tokenKeyDir(region.login.tokenServer)).jwksPath));
  }
  return { spec: { name: `registry-${region.name}`, command: `${BIN_DIR}/registry`, args: ['serve', config], env: registryEnv }, address };
}

export function varnish(region: LocalRegion, env: Env): Component {
  const config = render('varnish.vcl.tmpl', `varnish-${region.name}.vcl`, {
    BACKEND_HOST: '127.0.0.1',
    BACKEND_PORT: region.registryPort,
    PURGERS: '"127.0.0.1";',
  });
  const address = `127.0.0.1:${region.cachePort}`;
  // -F: stay in the foreground so the pid is ours; -j none: no privilege drop, so the
  // checkout's directories need not be readable by the varnish user when run as root.
  const args = ['-F', '-j', 'none', '-a', address, '-T', `127.0.0.1:${region.cachePort + 10}`, '-n', `${RUN_DIR}/varnish-${region.name}`, '-f', config, '-s', 'malloc,64m'];
  return { spec: { name: `varnish-${region.name}`, command: 'varnishd', args, env }, address };
}

/**
 * Ferry's api and its workers: one worker for every queue, or, with
 * `workersPerRegion`, the production shape on one machine: worker-control for
 * the control queue and that many workers per region queue
 * (worker-<region>-<n>), each with its own metrics ports from 9464 up.
 */
export function ferry(topology: Topology, env: Env, workersPerRegion?: number): Component[] {
  const api: Component = { spec: ferrySpec('api', 'api', env), address: topology.ingestAddress };
  if (workersPerRegion === undefined) return [api, { spec: ferrySpec('worker', 'worker', env), address: null }];
  const queues = [
    { name: 'worker-control', queue: CONTROL_TASK_QUEUE },
    ...topology.regions.flatMap((region) =>
      Array.from({ length: workersPerRegion }, (_, index) => ({ name: `worker-${region.name}-${index + 1}`, queue: regionTaskQueue(region.name) })),
    ),
  ];
  const workers = queues.map(({ name, queue }, index): Component => {
    const metricsPorts = `${9464 + 2 * index},${9465 + 2 * index}`;
    return { spec: ferrySpec('worker', name, { ...env, FERRY_WORKER_QUEUES: queue, FERRY_WORKER_METRICS_PORTS: metricsPorts }), address: null };
  });
  return [api, ...workers];
}

/** The api and worker processes `up --with-ferry` may have started, whatever their shape. */
export const isFerryProcess = (name: string) => name === 'api' || name === 'worker' || name.startsWith('worker-');

const asRoot = (command: string, args: string[]) =>
  process.getuid?.() === 0 ? execFileSync(command, args, { stdio: 'inherit' }) : execFileSync('sudo', [command, ...args], { stdio: 'inherit' });

/** The machine's Postgres, started if it is down, with the database the configuration names. */
export async function ensurePostgres(topology: Topology, postgresUrl: string, log: (line: string) => void): Promise<void> {
  if (!(await portOpen(topology.postgresAddress))) {
    if (!existsSync('/etc/postgresql')) throw new Error(`Postgres is not installed; the stack expects the machine's cluster on ${topology.postgresAddress}`);
    log("starting the machine's Postgres");
    const versions = readdirSync('/etc/postgresql').sort((a, b) => Number(a) - Number(b));
    asRoot('pg_ctlcluster', ['--skip-systemctl-redirect', versions.at(-1)!, 'main', 'start']);
    await waitUntil(`Postgres answering on ${topology.postgresAddress}`, () => portOpen(topology.postgresAddress), START_TIMEOUT_MS);
  }
  if (await ensureDatabase(postgresUrl)) log(`created database ${new URL(postgresUrl).pathname.slice(1)}`);
}

/** The machine's NATS with JetStream, started if it is down. */
export async function ensureNats(topology: Topology, log: (line: string) => void): Promise<void> {
  if (await portOpen(topology.natsAddress)) return;
  if (!existsSync('/usr/sbin/nats-server')) throw new Error(`nats-server is not installed; the stack expects the machine's NATS on ${topology.natsAddress}`);
  log("starting the machine's NATS");
  asRoot('start-stop-daemon', ['--start', '--oknodo', '--background', '--exec', '/usr/sbin/nats-server', '--',
    '-a', '127.0.0.1', '-p', '4222', '-js', '-sd', '/var/lib/nats-server', '-l', '/var/log/nats-server.log']);
  await waitUntil(`NATS answering on ${topology.natsAddress}`, () => portOpen(topology.natsAddress), START_TIMEOUT_MS);
}
