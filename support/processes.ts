// Ferry's own processes (api, worker) as the tests and the bench run them:
// real `node --import tsx` processes from this checkout, logging to
// .stack/logs, stopped by pid. Also the two waits every caller needs.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { createConnection } from 'node:net';

export type FerryRole = 'api' | 'worker';

export const repoRoot = new URL('../', import.meta.url).pathname;
const ENTRIES: Record<FerryRole, string> = { api: 'api/main.ts', worker: 'workers/main.ts' };

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

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts Ferry's api or worker from this checkout with `env`, appending its
 * output to .stack/logs/<logName>.log; `nodeArgs` go before the entry point
 * (e.g. the CPU profiler's flags). `detached` outlives the caller's process.
 */
export function spawnFerry(role: FerryRole, options: { env: Record<string, string>; logName: string; nodeArgs?: string[]; detached?: boolean }): ChildProcess {
  mkdirSync(`${repoRoot}.stack/logs`, { recursive: true });
  const log = openSync(`${repoRoot}.stack/logs/${options.logName}.log`, 'a');
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', ENTRIES[role]], {
    cwd: repoRoot,
    env: options.env,
    stdio: ['ignore', log, log],
    detached: options.detached ?? false,
  });
  closeSync(log);
  if (options.detached) child.unref();
  return child;
}

/** Sends `signal` (SIGTERM: a graceful stop; SIGKILL: a crash), then SIGKILL after 20 s; resolves once the process is gone. */
export async function stopPid(pid: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, signal);
  await waitUntil(`pid ${pid} exiting`, async () => !alive(pid), 20_000).catch(() => process.kill(pid, 'SIGKILL'));
  await waitUntil(`pid ${pid} exiting after SIGKILL`, async () => !alive(pid), 5_000);
}
