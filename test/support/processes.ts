// Ferry's api and worker as real processes for stack tests, tracked by pid
// files so a test can kill one (as a crash would) and start another, and the
// global teardown still stops whatever runs at the end.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { alive, spawnFerry, stopPid, type FerryRole } from '../../support/processes';
import { localStackEnv, repoRoot } from './env';

export { portOpen, waitUntil } from '../../support/processes';

const pidFile = (role: FerryRole) => `${repoRoot}.stack/run/test-${role}.pid`;

export function pidOf(role: FerryRole): number | null {
  try {
    const pid = Number(readFileSync(pidFile(role), 'utf8'));
    return alive(pid) ? pid : null;
  } catch {
    return null;
  }
}

/** Starts a detached process from this checkout, logging to .stack/logs/test-<role>.log. */
export function startFerry(role: FerryRole, extraEnv: Record<string, string> = {}): number {
  mkdirSync(`${repoRoot}.stack/run`, { recursive: true });
  const child = spawnFerry(role, { env: { ...localStackEnv(), ...extraEnv }, logName: `test-${role}`, detached: true });
  writeFileSync(pidFile(role), String(child.pid));
  return child.pid!;
}

/** Stops the process; SIGKILL is a crash, SIGTERM a graceful stop. Resolves once it is gone. */
export async function stopFerry(role: FerryRole, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const pid = pidOf(role);
  rmSync(pidFile(role), { force: true });
  if (pid !== null) await stopPid(pid, signal);
}
