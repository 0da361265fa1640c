// The local stack's supervisor (DESIGN.md "Local stack"):
// starts what is not running, waits for every port, stops by pid, reports.
// stack/stack.sh installs what is missing, then hands its command here:
//
//   up [--with-ferry [--workers-per-region N]]
//                       start what is not running (Postgres and NATS are the machine's: started if down);
//                       Ferry as one worker for every queue, or a control worker and N per region
//   down                stop what `up` started (TERM, then KILL); Postgres and NATS keep running
//   stop-ferry          stop only the api and workers of `up --with-ferry`
//   stop NAME...        stop single components (fault tests); `up` starts them again
//   status              one line per component
//
// Regions, ports and buckets come from domain/config.ts (stack/topology.ts).
import { readdirSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { configSchema } from '../domain/config';
import { localEnv } from '../support/local-env';
import { pidOf, portOpen, RUN_DIR, startProcess, stopProcesses, waitReady, waitUntil } from '../support/processes';
import * as components from './components';
import { ensureBuckets, type StackBucket } from './create-buckets';
import { componentAddresses, localTopology, tokenServers, type Topology } from './topology';

const log = (line: string) => console.log(`stack: ${line}`);
// Node 20 is supported here; the AWS SDK's notice about its future Node 22 floor is noise.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const BUCKETS_DONE = `${RUN_DIR}/buckets.done`;

/** The environment every component starts with: stack/local.env's throwaway credentials under the caller's. */
function stackEnv(): components.Env {
  return { ...localEnv(), ...process.env };
}

/** Starts the components that do not run yet (telling which already do); returns the names it started. */
async function startAll(list: components.Component[]): Promise<Set<string>> {
  const started = new Set<string>();
  for (const { spec, address, prepare } of list) {
    const pid = pidOf(spec.name);
    if (pid !== null) {
      log(`${spec.name} already running (pid ${pid})`);
    } else if (address !== null && (await portOpen(address))) {
      log(`${spec.name}: ${address} already answers, but not from a process of this checkout's stack; using it`);
    } else {
      prepare?.();
      log(`${spec.name} started (pid ${startProcess(spec)})`);
      started.add(spec.name);
    }
  }
  return started;
}

async function ready(list: components.Component[], started: Set<string>): Promise<void> {
  await Promise.all(list.map((component) => waitReady(component.spec.name, components.readiness(component, started.has(component.spec.name)))));
}

async function up(withFerry: boolean, workersPerRegion: number | undefined): Promise<void> {
  const began = process.hrtime.bigint();
  const topology = localTopology();
  const env = stackEnv();
  await components.ensurePostgres(topology, configSchema.parse({}).postgresUrl, log);
  await components.ensureNats(topology, log);

  const temporalStore = process.env.FERRY_TEMPORAL_STORE ?? 'sqlite';
  const temporal = temporalStore === 'postgres' ? components.temporalOnPostgres(topology, env) : components.temporalDev(topology, env);
  await ready([temporal], await startAll([temporal]));
  await components.registerSearchAttributes(topology, log);

  const s3 = [...topology.s3Endpoints.map((endpoint) => components.s3Server(endpoint, env)), components.toxiproxy(topology, env)];
  const s3Started = await startAll(s3);
  await ready(s3, s3Started);
  await setProxies(topology, topology.s3Endpoints.map((endpoint) => endpoint.name), true);
  // Made again when an S3 server started, or when the regions changed since (the marker lists what was made).
  const buckets = topology.regions.map((region) => `${region.s3.name}/${region.bucket}`).join('\n');
  if (s3Started.size > 0 || !existsSync(BUCKETS_DONE) || readFileSync(BUCKETS_DONE, 'utf8') !== buckets) {
    await ensureBuckets(env, log, stackOnlyBuckets(topology));
    writeFileSync(BUCKETS_DONE, buckets);
  }

  // A token-login registry sends its clients to its token server: that one first.
  const tokens = tokenServers(topology).map(({ region }) => components.tokenServer(region, env));
  await ready(tokens, await startAll(tokens));

  const regions = topology.regions.flatMap((region) => [components.registry(topology, region, env), components.varnish(region, env)]);
  const regionsStarted = await startAll(regions);
  await ready(regions, regionsStarted);

  if (withFerry) {
    const ferry = components.ferry(topology, env, workersPerRegion);
    await ready(ferry, await startAll(ferry));
  }
  await status(topology);
  console.log(`stack up in ${(Number(process.hrtime.bigint() - began) / 1e9).toFixed(1)} s`);
}

/** The buckets of registry-API regions' registries, which Ferry's config does not name. */
function stackOnlyBuckets(topology: Topology): StackBucket[] {
  return topology.regions
    .filter((region) => !region.storageKnownToFerry)
    .map((region) => ({
      endpoint: `http://127.0.0.1:${region.s3.port}`,
      bucket: region.bucket,
      accessKeyIdEnv: region.s3.accessKeyIdEnv,
      secretAccessKeyEnv: region.s3.secretAccessKeyEnv,
    }));
}

/**
 * A proxied S3 endpoint is down when its server is: toxiproxy stops listening
 * for it too (connections refused, as without a proxy), and listens again at `up`.
 */
async function setProxies(topology: Topology, names: string[], enabled: boolean): Promise<void> {
  const proxied = topology.faultProxy.proxies.filter((proxy) => names.includes(proxy.name));
  if (proxied.length === 0 || !(await portOpen(topology.faultProxy.apiAddress))) return;
  for (const proxy of proxied) {
    const response = await fetch(`http://${topology.faultProxy.apiAddress}/proxies/${proxy.name}`, { method: 'POST', body: JSON.stringify({ enabled }) });
    if (!response.ok) throw new Error(`toxiproxy: ${enabled ? 'enabling' : 'disabling'} ${proxy.name} answered ${response.status}: ${await response.text()}`);
    if (enabled) await waitUntil(`toxiproxy listening for ${proxy.name} on ${proxy.listen}`, () => portOpen(proxy.listen), components.START_TIMEOUT_MS);
  }
}

async function stop(names: string[]): Promise<void> {
  for (const name of names) {
    const pid = pidOf(name);
    if (pid !== null) log(`stopping ${name} (pid ${pid})`);
  }
  await setProxies(localTopology(), names, false);
  await stopProcesses(names);
}

/** Names of the processes this checkout's stack started (its pid files). */
const startedNames = () => (existsSync(RUN_DIR) ? readdirSync(RUN_DIR).filter((file) => file.endsWith('.pid')).map((file) => file.slice(0, -'.pid'.length)) : []);

async function down(): Promise<void> {
  const started = startedNames();
  // Ferry first, so it does not see its dependencies vanish mid-work.
  await stop(started.filter(components.isFerryProcess));
  await stop(started.filter((name) => !components.isFerryProcess(name)));
  rmSync(BUCKETS_DONE, { force: true });
  log('stack down (Postgres and NATS are the machine\'s and keep running)');
}

async function status(topology: Topology): Promise<void> {
  const rows: [string, string, string, string][] = [];
  const machine: [string, string][] = [['postgres', topology.postgresAddress], ['nats', topology.natsAddress]];
  for (const [name, address] of machine) rows.push([name, 'machine', address, (await portOpen(address)) ? 'up' : 'down']);
  // Workers of `up --with-ferry --workers-per-region N` are listed as they run, in place of the single worker.
  const splitWorkers = startedNames().filter((name) => name.startsWith('worker-')).sort();
  const listed = componentAddresses(topology).flatMap(([name, address]): [string, string | null][] =>
    name === 'worker' && splitWorkers.length > 0 ? splitWorkers.map((worker) => [worker, null]) : [[name, address]],
  );
  for (const [name, address] of listed) {
    const pid = pidOf(name);
    let state: string;
    if (address === null) state = pid === null ? 'down' : 'up';
    else if (await portOpen(address)) state = pid === null ? 'up (not started by this checkout)' : 'up';
    else state = pid === null ? 'down' : 'running, not answering';
    rows.push([name, pid === null ? '-' : String(pid), address ?? '-', state]);
  }
  for (const [name, pid, address, state] of [['component', 'pid', 'address', 'state'] as const, ...rows]) {
    console.log(`${name.padEnd(24)} ${pid.padEnd(8)} ${address.padEnd(18)} ${state}`);
  }
}

const USAGE = 'usage: stack/stack.sh up [--with-ferry [--workers-per-region N]] | down | stop-ferry | stop NAME... | status | install';

/** `up`'s options: whether to start Ferry, and how many workers per region queue (undefined: one worker for all). */
function upOptions(options: string[]): [boolean, number | undefined] {
  const [withFerry, flag, count, ...more] = options;
  if (withFerry === undefined) return [false, undefined];
  if (withFerry === '--with-ferry' && flag === undefined) return [true, undefined];
  const workers = Number(count);
  if (withFerry !== '--with-ferry' || flag !== '--workers-per-region' || !Number.isInteger(workers) || workers < 1 || workers > 8 || more.length > 0) {
    throw new Error(`unknown options for up: ${options.join(' ')} (expected --with-ferry [--workers-per-region N], N from 1 to 8)`);
  }
  return [true, workers];
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'up':
      return up(...upOptions(rest));
    case 'down':
      return down();
    case 'stop-ferry':
      return stop(startedNames().filter(components.isFerryProcess));
    case 'stop':
      if (rest.length === 0) throw new Error('usage: stack/stack.sh stop NAME...');
      return stop(rest);
    case 'status':
      return status(localTopology());
    default:
      throw new Error(USAGE);
  }
}

try {
  await main(process.argv.slice(2));
} catch (error) {
  console.error(`stack: error: ${(error as Error).message}`);
  process.exit(1);
}
