// Stack tests run against the real local stack: `stack up` (idempotent, fast
// when already up), then Ferry's api and worker as real processes built from
// this checkout, stopped again at the end.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createConnection } from 'node:net';
import { localStackEnv, repoRoot } from '../support/env';

const processes: ChildProcess[] = [];

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${what} did not come up within ${timeoutMs / 1000}s`);
}

function startFerryProcess(name: string, entry: string, env: Record<string, string>): ChildProcess {
  mkdirSync(`${repoRoot}.stack/logs`, { recursive: true });
  const log = createWriteStream(`${repoRoot}.stack/logs/test-${name}.log`, { flags: 'a' });
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  processes.push(child);
  return child;
}

export async function setup(): Promise<void> {
  if (process.env.FERRY_SKIP_STACK_UP !== '1') {
    execFileSync('bash', ['stack/stack.sh', 'up'], { cwd: repoRoot, stdio: 'inherit' });
  }
  if (await portOpen(8080)) {
    throw new Error('port 8080 is taken (a Ferry api from `npm start`?): stop it with `npm run stack -- stop-ferry` before running the tests');
  }
  const env = localStackEnv();
  startFerryProcess('worker', 'workers/main.ts', env);
  const api = startFerryProcess('api', 'api/main.ts', env);
  await waitFor('the Ferry api on :8080 (log: .stack/logs/test-api.log)', async () => {
    if (api.exitCode !== null) throw new Error(`the Ferry api exited with ${api.exitCode}; see .stack/logs/test-api.log`);
    return portOpen(8080);
  }, 60_000);
}

export async function teardown(): Promise<void> {
  await Promise.all(
    processes.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
          setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
        }),
    ),
  );
}
