// Ferry's api and worker as real processes for stack tests, run by the
// checkout's supervisor (support/processes.ts) as test-api and test-worker, so
// a test can kill one (as a crash would) and start another, and the global
// teardown still stops whatever runs at the end.
import { ferrySpec, pidOf as supervisedPid, startProcess, stopProcesses, type FerryRole } from '../../support/processes';
import { localStackEnv } from './env';

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
