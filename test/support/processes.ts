// Ferry's api and worker as real processes for stack tests, run by the
// checkout's supervisor (support/processes.ts) as test-api and test-worker, so
// a test can kill one (as a crash would) and start another, and the global
// teardown still stops whatever runs at the end.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { ferrySpec, pidOf as supervisedPid, RUN_DIR, startProcess, stopProcesses, type FerryRole } from '../../support/processes';
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
  const path = configVariant(name, change);
  await stopFerry('worker');
  startFerry('worker', { FERRY_CONFIG: path });
  return async () => {
    await stopFerry('worker');
    startFerry('worker');
  };
}

/**
 * Writes the run's configuration as `change` returns it to
 * .stack/run/test-config-<name>.json and returns its path.
 */
export function configVariant(name: string, change: (config: Record<string, unknown>) => Record<string, unknown>): string {
  const path = `${repoRoot}.stack/run/test-config-${name}.json`;
  writeFileSync(path, JSON.stringify(change(JSON.parse(readFileSync(testConfigPath, 'utf8')))));
  return path;
}

/**
 * Starts one more worker beside the run's, as production scales out: process
 * test-worker-<name> polling `queues`, with its own metrics ports, and its
 * pid. Stopped by stopExtraWorkers (and by the global setup and teardown).
 */
export function startExtraWorker(name: string, queues: string[], metricsPorts: [number, number], env: Record<string, string> = {}): number {
  const workerEnv = { ...localStackEnv(), ...env, FERRY_WORKER_QUEUES: queues.join(','), FERRY_WORKER_METRICS_PORTS: metricsPorts.join(',') };
  return startProcess(ferrySpec('worker', `test-worker-${name}`, workerEnv));
}

/** Stops every extra worker still running: SIGTERM a graceful stop, SIGKILL a crash. */
export async function stopExtraWorkers(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const names = (existsSync(RUN_DIR) ? readdirSync(RUN_DIR) : []).flatMap((file) => (/^test-worker-.+\.pid$/.test(file) ? [file.slice(0, -'.pid'.length)] : []));
  await stopProcesses(names, signal, 20_000);
}

/** Stops one extra worker (SIGKILL: as a crash would). */
export async function stopExtraWorker(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  await stopProcesses([`test-worker-${name}`], signal, 20_000);
}
