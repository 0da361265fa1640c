// Ferry's api and worker as real processes for stack tests, run by the
// checkout's supervisor (support/processes.ts) as test-api and test-worker, so
// a test can kill one (as a crash would) and start another, and the global
// teardown still stops whatever runs at the end.
import { readFileSync, writeFileSync } from 'node:fs';
import { ferrySpec, pidOf as supervisedPid, startProcess, stopProcesses, type FerryRole } from '../../support/processes';
import { localStackEnv, repoRoot, testConfigPath } from './env';

export { portOpen, waitUntil } from '../../support/processes';

const processName = (role: FerryRole) => `test-${role}`;

export function pidOf(role: FerryRole): number | null {
  return supervisedPid(processName(role));
}

/** Starts a detached process from this checkout, logging to .stack/logs/test-<role>.log. */
export function startFerry(role: FerryRole, extraEnv: Record<string, string> = {}): number {
  return startProcess(ferrySpec(role, processName(role), { ...localStackEnv(), ...extraEnv }));
}

/** Stops the process; SIGKILL is a crash, SIGTERM a graceful stop (SIGKILL after 20 s). Resolves once it is gone. */
export async function stopFerry(role: FerryRole, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  await stopProcesses([processName(role)], signal, 20_000);
}

/**
 * Restarts the worker with the run's configuration as `change` returns it
 * (written to .stack/run/test-config-<name>.json); the returned function
 * restarts it as the run started it.
 */
export async function restartWorkerWith(name: string, change: (config: Record<string, unknown>) => Record<string, unknown>): Promise<() => Promise<void>> {
  const path = `${repoRoot}.stack/run/test-config-${name}.json`;
  writeFileSync(path, JSON.stringify(change(JSON.parse(readFileSync(testConfigPath, 'utf8')))));
  await stopFerry('worker');
  startFerry('worker', { FERRY_CONFIG: path });
  return async () => {
    await stopFerry('worker');
    startFerry('worker');
  };
}
