// Stack tests run against the real local stack: `stack up` (idempotent, fast
// when already up), then Ferry's api and worker as real processes built from
// this checkout, stopped again at the end.
import { execFileSync } from 'node:child_process';
import { repoRoot } from '../support/env';
import { pidOf, portOpen, startFerry, stopFerry, waitUntil } from '../support/processes';

export async function setup(): Promise<void> {
  if (process.env.FERRY_SKIP_STACK_UP !== '1') {
    execFileSync('bash', ['stack/stack.sh', 'up'], { cwd: repoRoot, stdio: 'inherit' });
  }
  // Leftovers of a run that was interrupted before its teardown.
  await Promise.all([stopFerry('api'), stopFerry('worker')]);
  if (await portOpen(8080)) {
    throw new Error('port 8080 is taken (a Ferry api from `npm start`?): stop it with `npm run stack -- stop-ferry` before running the tests');
  }
  startFerry('worker');
  startFerry('api');
  await waitUntil('the Ferry api answering on :8080 (log: .stack/logs/test-api.log)', async () => {
    if (pidOf('api') === null) throw new Error('the Ferry api exited; see .stack/logs/test-api.log');
    return portOpen(8080);
  }, 60_000);
}

export async function teardown(): Promise<void> {
  await Promise.all([stopFerry('api'), stopFerry('worker')]);
}
