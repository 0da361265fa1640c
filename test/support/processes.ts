// Ferry's api and worker as real processes for stack tests, tracked by pid
// files so a test can kill one (as a crash would) and start another, and the
// global teardown still stops whatever runs at the end.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { localStackEnv, repoRoot } from './env';

export type FerryProcess = 'api' | 'worker';

const entries: Record<FerryProcess, string> = { api: 'api/main.ts', worker: 'workers/main.ts' };
const pidFile = (name: FerryProcess) => `${repoRoot}.stack/run/test-${name}.pid`;

export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${what} did not happen within ${timeoutMs / 1000}s`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function pidOf(name: FerryProcess): number | null {
  try {
    const pid = Number(readFileSync(pidFile(name), 'utf8'));
    return alive(pid) ? pid : null;
  } catch {
    return null;
  }
}

/** Starts a detached process from this checkout, logging to .stack/logs/test-<name>.log. */
export function startFerry(name: FerryProcess, extraEnv: Record<string, string> = {}): number {
  mkdirSync(`${repoRoot}.stack/logs`, { recursive: true });
  mkdirSync(`${repoRoot}.stack/run`, { recursive: true });
  const log = openSync(`${repoRoot}.stack/logs/test-${name}.log`, 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', entries[name]], {
    cwd: repoRoot,
    env: { ...localStackEnv(), ...extraEnv },
    stdio: ['ignore', log, log],
    detached: true,
  });
  closeSync(log);
  child.unref();
  writeFileSync(pidFile(name), String(child.pid));
  return child.pid!;
}

/** Stops the process; SIGKILL is a crash, SIGTERM a graceful stop. Resolves once it is gone. */
export async function stopFerry(name: FerryProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const pid = pidOf(name);
  rmSync(pidFile(name), { force: true });
  if (pid === null) return;
  process.kill(pid, signal);
  await waitUntil(`${name} (pid ${pid}) exiting`, async () => !alive(pid), 20_000).catch(() => process.kill(pid, 'SIGKILL'));
}
