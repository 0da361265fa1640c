// Ferry's api and worker as the bench runs them: real processes from this
// checkout (as `npm run api` / `npm run worker` would), with the bench's
// configuration, measured through /proc while a phase runs.
import { readFile, writeFile } from 'node:fs/promises';
import { ferrySpec, pidOf, startProcess, stopProcesses, type FerryRole } from '../support/processes';
import { benchEnv } from './environment';

export type { FerryRole } from '../support/processes';

const CLOCK_TICKS_PER_SECOND = 100;

export interface ProcessUsage {
  /** User plus system CPU time spent during the measured phase. */
  cpuSeconds: number;
  /** Resident set when the phase began: what the peak grew from. */
  startRssMB: number;
  /** Peak resident set during the measured phase (VmHWM after a reset at its start). */
  peakRssMB: number;
}

export { portOpen, waitUntil } from '../support/processes';

/** One of the bench's Ferry processes, measured through /proc while a phase runs. */
export class MeasuredFerryProcess {
  private cpuAtStart = 0;
  private rssAtStartMB = 0;

  private constructor(
    readonly role: FerryRole,
    private readonly name: string,
    private readonly pid: number,
  ) {}

  /** Starts the process as bench-<role>, logging to .stack/logs/bench-<role>.log; with `profileDir`, under the V8 CPU profiler. */
  static start(role: FerryRole, profileDir?: string): MeasuredFerryProcess {
    const nodeArgs = profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${role}.cpuprofile`];
    const name = `bench-${role}`;
    return new MeasuredFerryProcess(role, name, startProcess(ferrySpec(role, name, benchEnv(), nodeArgs)));
  }

  get running(): boolean {
    return pidOf(this.name) === this.pid;
  }

  /** Starts a measured phase: remembers the CPU time so far and resets the peak RSS to the current RSS. */
  async beginMeasurement(): Promise<void> {
    this.cpuAtStart = await this.cpuSeconds();
    this.rssAtStartMB = await this.statusMB('VmRSS');
    // clear_refs "5" resets VmHWM (Linux ≥ 4.0); the bench runs as the processes' owner.
    await writeFile(`/proc/${this.pid}/clear_refs`, '5');
  }

  async usage(): Promise<ProcessUsage> {
    return { cpuSeconds: (await this.cpuSeconds()) - this.cpuAtStart, startRssMB: this.rssAtStartMB, peakRssMB: await this.statusMB('VmHWM') };
  }

  /** SIGTERM (a graceful stop), SIGKILL after 20 s; resolves once the process is gone. */
  async stop(): Promise<void> {
    await stopProcesses([this.name], 'SIGTERM', 20_000);
  }

  private async statusMB(field: 'VmRSS' | 'VmHWM'): Promise<number> {
    const status = await readFile(`/proc/${this.pid}/status`, 'utf8');
    return Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? Number.NaN) / 1024;
  }

  private async cpuSeconds(): Promise<number> {
    const stat = await readFile(`/proc/${this.pid}/stat`, 'utf8');
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  }
}
