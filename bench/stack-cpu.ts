// Where the machine's CPU went while Ferry replicated: every process of the
// local stack (Temporal, versitygw, the registries, Varnish, Postgres, NATS,
// toxiproxy, skopeo under the bench), read from /proc at the start and the end
// of the measured phase. Ferry's own processes are only part of the cost of a
// push; on a 2-core machine the rest of the stack shares the same cores, and
// this table says which part a missed target waits on.
import { readdir, readFile } from 'node:fs/promises';

const CLOCK_TICKS_PER_SECOND = 100;

/** A component of the stack, by the process's command line. First match wins. */
const COMPONENTS: Array<[string, RegExp]> = [
  ['ferry worker', /workers\/main\.ts/],
  ['ferry api', /api\/main\.ts/],
  ['temporal', /(^|\/)temporal(-server)?\b/],
  ['versitygw A (eastus, westeurope)', /versitygw.*s3-a/],
  ['versitygw B (southeastasia)', /versitygw.*s3-b/],
  ['toxiproxy', /toxiproxy/],
  ['registry eastus', /registry.*eastus/],
  ['registry westeurope', /registry.*westeurope/],
  ['registry southeastasia', /registry.*southeastasia/],
  ['registries', /(^|\/)(registry|docker-registry)\b/],
  ['varnish', /varnish/],
  ['postgres', /postgres/],
  ['nats', /nats-server/],
  ['skopeo', /skopeo/],
  ['bench and its skopeo pushes', /bench\/(main|waits|limits|reconcile)\.ts/],
];

interface ProcessTicks {
  component: string;
  /** Own user + system ticks, and those of reaped children (skopeo runs under the bench). */
  ticks: number;
}

export interface StackCpu {
  seconds: number;
  /** CPU seconds the whole machine had (cores × wall) and how much of it was idle. */
  machineSeconds: number;
  idleSeconds: number;
  /** CPU seconds by component, largest first; "other" is every process that matched none. */
  components: Array<{ component: string; cpuSeconds: number }>;
}

function componentOf(cmdline: string): string {
  return COMPONENTS.find(([, pattern]) => pattern.test(cmdline))?.[0] ?? 'other';
}

async function processes(): Promise<Map<number, ProcessTicks>> {
  const result = new Map<number, ProcessTicks>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const [stat, cmdline] = await Promise.all([readFile(`/proc/${entry}/stat`, 'utf8'), readFile(`/proc/${entry}/cmdline`, 'utf8')]);
      // After the parenthesised name: utime is field 14, stime 15, cutime 16, cstime 17.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
      result.set(Number(entry), { component: componentOf(cmdline.replaceAll('\0', ' ')), ticks });
    } catch {
      // Gone between the listing and the read.
    }
  }
  return result;
}

/** user, nice, system, idle, iowait, irq, softirq, steal of the whole machine, in ticks. */
async function machineTicks(): Promise<{ total: number; idle: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!;
  const values = line.split(/\s+/).slice(1, 9).map(Number);
  return { total: values.reduce((sum, value) => sum + value, 0), idle: values[3]! + values[4]! };
}

/** A measurement of the whole stack's CPU from `begin` until `end`. */
export class StackCpuMeter {
  private constructor(
    private readonly startedAt: number,
    private readonly before: Map<number, ProcessTicks>,
    private readonly machineBefore: { total: number; idle: number },
  ) {}

  static async begin(): Promise<StackCpuMeter> {
    return new StackCpuMeter(performance.now(), await processes(), await machineTicks());
  }

  async end(): Promise<StackCpu> {
    const [after, machine] = await Promise.all([processes(), machineTicks()]);
    return stackCpuBetween(this.before, after, this.machineBefore, machine, (performance.now() - this.startedAt) / 1000);
  }
}

/** Pure: the per-component difference of two snapshots (a process that started meanwhile counts from zero). */
export function stackCpuBetween(
  before: Map<number, ProcessTicks>,
  after: Map<number, ProcessTicks>,
  machineBefore: { total: number; idle: number },
  machineAfter: { total: number; idle: number },
  seconds: number,
): StackCpu {
  const byComponent = new Map<string, number>();
  for (const [pid, now] of after) {
    const earlier = before.get(pid);
    const ticks = earlier !== undefined && earlier.component === now.component ? now.ticks - earlier.ticks : now.ticks;
    if (ticks > 0) byComponent.set(now.component, (byComponent.get(now.component) ?? 0) + ticks);
  }
  return {
    seconds,
    machineSeconds: (machineAfter.total - machineBefore.total) / CLOCK_TICKS_PER_SECOND,
    idleSeconds: (machineAfter.idle - machineBefore.idle) / CLOCK_TICKS_PER_SECOND,
    components: [...byComponent.entries()]
      .map(([component, ticks]) => ({ component, cpuSeconds: ticks / CLOCK_TICKS_PER_SECOND }))
      .sort((a, b) => b.cpuSeconds - a.cpuSeconds),
  };
}

/** The Markdown table of one measurement, with each component's share of the machine and its seconds per image. */
export function stackCpuTable(cpu: StackCpu, images: number): string {
  const share = (value: number) => `${((value / cpu.machineSeconds) * 100).toFixed(1)}%`;
  const rows = [
    ...cpu.components.map(({ component, cpuSeconds }) => [component, cpuSeconds.toFixed(1), share(cpuSeconds), (cpuSeconds / images).toFixed(3)]),
    ['idle', cpu.idleSeconds.toFixed(1), share(cpu.idleSeconds), '–'],
  ];
  return [
    `Where the machine's CPU went during Ferry's phase (${cpu.seconds.toFixed(1)} s × cores = ${cpu.machineSeconds.toFixed(1)} CPU s):`,
    '',
    '| stack process | CPU seconds | share of the machine | CPU s per image |',
    '| --- | --- | --- | --- |',
    ...rows.map((cells) => `| ${cells.join(' | ')} |`),
  ].join('\n');
}
