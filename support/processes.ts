// The one process supervisor of this checkout, used by the local stack
// (stack/supervise.ts), the stack tests and the bench. A process runs detached
// in its own session, appends to .stack/logs/<name>.log and is known by
// .stack/run/<name>.pid; it is stopped by pid (its whole process group), and
// is ready when its address answers and its own check, if any, passes.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';

export const repoRoot = new URL('../', import.meta.url).pathname;
export const RUN_DIR = `${repoRoot}.stack/run`;
export const LOG_DIR = `${repoRoot}.stack/logs`;
const pidFile = (name: string) => `${RUN_DIR}/${name}.pid`;
export const logFile = (name: string) => `${LOG_DIR}/${name}.log`;

export interface ProcessSpec {
  /** Names the pid file and the log. */
  name: string;
  command: string;
  args: string[];
  env: Record<string, string | undefined>;
}

export type FerryRole = 'api' | 'worker';
const ENTRIES: Record<FerryRole, string> = { api: 'api/main.ts', worker: 'workers/main.ts' };

/**
 * A worker's malloc settings unless the environment gives others: two arenas instead of one per
 * thread that allocated (the worker's libuv, Temporal core and workflow threads), measured to save
 * some 20 MB at start and 30 MB at the peak at no CPU cost (README "A worker's memory").
 */
const WORKER_MEMORY: Record<string, string> = { MALLOC_ARENA_MAX: '2' };

/** The local stack's storage and registry secrets (stack/local.env), which only workers are given. */
const REGION_SECRET = /^FERRY_(S3|REGISTRY)_/;

/**
 * Ferry's api or worker from this checkout, as `npm run api` runs it; `nodeArgs` go before the entry point (the CPU profiler's, say).
 * The api runs without any region's storage or registry credentials, as a least-privilege deployment runs it.
 */
export function ferrySpec(role: FerryRole, name: string, env: Record<string, string | undefined>, nodeArgs: string[] = []): ProcessSpec {
  const given = role === 'api' ? Object.fromEntries(Object.entries(env).filter(([variable]) => !REGION_SECRET.test(variable))) : { ...WORKER_MEMORY, ...env };
  return { name, command: process.execPath, args: [...nodeArgs, '--import', 'tsx', ENTRIES[role]], env: given };
}

/** "127.0.0.1:7233" or a port on 127.0.0.1: true when something accepts a connection there. */
export function portOpen(address: number | string): Promise<boolean> {
  const [host, port] = typeof address === 'number' ? ['127.0.0.1', address] : [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(200);
  }
  throw new Error(`${what} did not happen within ${timeoutMs / 1000}s`);
}

/** State, process group and session of a process, from /proc (null when it is gone). */
function procStat(pid: number): { state: string; group: number; session: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After the parenthesised command name: state, ppid, pgrp, session.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0]!, group: Number(fields[2]), session: Number(fields[3]) };
  } catch {
    return null;
  }
}

/** True while any process of group `group` runs (zombies, not yet reaped by their parent, do not count). */
function groupRunning(group: number): boolean {
  return readdirSync('/proc').some((entry) => {
    if (!/^\d+$/.test(entry)) return false;
    const stat = procStat(Number(entry));
    return stat !== null && stat.group === group && stat.state !== 'Z';
  });
}

/**
 * The pid of `name` if it still runs; forgets a stale pid file. Each process
 * leads its own session, which also guards against a pid reused by another.
 */
export function pidOf(name: string): number | null {
  if (!existsSync(pidFile(name))) return null;
  const pid = Number(readFileSync(pidFile(name), 'utf8'));
  const stat = Number.isInteger(pid) && pid > 0 ? procStat(pid) : null;
  if (stat !== null && stat.state !== 'Z' && stat.session === pid) return pid;
  rmSync(pidFile(name), { force: true });
  return null;
}

/** Starts `spec` detached in its own session (it outlives the caller), logging to .stack/logs/<name>.log; returns its pid. */
export function startProcess(spec: ProcessSpec): number {
  mkdirSync(RUN_DIR, { recursive: true });
  mkdirSync(LOG_DIR, { recursive: true });
  const log = openSync(logFile(spec.name), 'a');
  writeFileSync(log, `--- ${new Date().toISOString()} starting ${spec.name}: ${[spec.command, ...spec.args].join(' ')}\n`);
  const child = spawn(spec.command, spec.args, { cwd: repoRoot, env: spec.env, stdio: ['ignore', log, log], detached: true });
  closeSync(log);
  child.unref();
  if (child.pid === undefined) throw new Error(`${spec.name}: ${spec.command} could not be started`);
  writeFileSync(pidFile(spec.name), String(child.pid));
  return child.pid;
}

/** The last `lines` lines of the log of `name` since its latest start. */
export function logSinceStart(name: string, lines = 20): string {
  if (!existsSync(logFile(name))) return '';
  const text = readFileSync(logFile(name), 'utf8');
  const start = text.lastIndexOf('\n--- ') + 1;
  return text.slice(start).trimEnd().split('\n').slice(-lines).map((line) => `  | ${line}`).join('\n');
}

export interface Readiness {
  /** host:port that answers once the process is up; null when it has none. */
  address: string | null;
  /** A further check that must pass (a health call, say). */
  check?: () => Promise<boolean>;
  timeoutMs: number;
  /** True when this caller started the process: then its exit fails the wait at once. */
  startedHere: boolean;
}

/** Waits until `name` is ready; throws with its log when it exits or times out. */
export async function waitReady(name: string, readiness: Readiness): Promise<void> {
  const failed = (reason: string) =>
    new Error(`${name} ${reason}; its log since this start (${logFile(name)}):\n${logSinceStart(name)}`);
  const deadline = Date.now() + readiness.timeoutMs;
  let notReady: string | null = null;
  for (;;) {
    const answers = readiness.address === null || (await portOpen(readiness.address));
    notReady = null;
    if (answers && readiness.check !== undefined) {
      notReady = await readiness.check().then(
        (ready) => (ready ? null : 'its readiness check failed'),
        (error: Error) => error.message,
      );
    }
    if (answers && notReady === null) break;
    if (readiness.startedHere && pidOf(name) === null) throw failed('exited');
    if (Date.now() > deadline) {
      const address = readiness.address ?? '(no address)';
      throw failed(answers ? `answers on ${address} but is not ready after ${readiness.timeoutMs / 1000}s: ${notReady}` : `did not answer on ${address} within ${readiness.timeoutMs / 1000}s`);
    }
    await sleep(200);
  }
  if (readiness.address === null && readiness.startedHere) {
    await sleep(2000); // no port to ask: give it time to fail on its configuration
    if (pidOf(name) === null) throw failed('exited');
  }
}

/**
 * Stops the named processes at once: `signal` to each process group (SIGTERM
 * a graceful stop, SIGKILL a crash), SIGKILL to what is left after `graceMs`.
 * Resolves once all are gone; returns the names that were running.
 */
export async function stopProcesses(names: string[], signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<string[]> {
  const running = names.flatMap((name) => {
    const pid = pidOf(name);
    return pid === null ? [] : [{ name, pid }];
  });
  const signalGroup = (pid: number, sent: NodeJS.Signals) => {
    try {
      process.kill(-pid, sent);
    } catch {
      // already gone
    }
  };
  for (const { pid } of running) signalGroup(pid, signal);
  const allGone = async () => running.every(({ pid }) => !groupRunning(pid));
  await waitUntil('stopping', allGone, graceMs).catch(() => {
    for (const { pid } of running) signalGroup(pid, 'SIGKILL');
  });
  await waitUntil(`${running.map(({ name }) => name).join(', ')} exiting after SIGKILL`, allGone, 5_000);
  for (const name of names) rmSync(pidFile(name), { force: true });
  return running.map(({ name }) => name);
}

const RUN_LOCK = `${RUN_DIR}/stack.lock`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * One stack test run or bench at a time on a checkout: both start Ferry
 * workers on the same Temporal task queues, and a second test run would
 * restart the first's api and worker and recreate its database under it. A
 * later run waits for the earlier one; a lock whose process died is taken over.
 */
export async function holdTheStack(what: string): Promise<void> {
  mkdirSync(RUN_DIR, { recursive: true });
  let announced = false;
  await waitUntil('the other run on the stack to finish', async () => {
    try {
      writeFileSync(RUN_LOCK, `${process.pid}\n`, { flag: 'wx' });
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number(readFileSync(RUN_LOCK, 'utf8').trim());
    if (!Number.isInteger(holder) || !alive(holder)) rmSync(RUN_LOCK, { force: true });
    else if (!announced) {
      announced = true;
      console.log(`${what}: another test run or bench (pid ${holder}) holds the stack; waiting for it to finish`);
    }
    return false;
  }, 60 * 60_000);
}

export function releaseTheStack(): void {
  try {
    if (Number(readFileSync(RUN_LOCK, 'utf8').trim()) === process.pid) rmSync(RUN_LOCK, { force: true });
  } catch {
    // Not held.
  }
}
