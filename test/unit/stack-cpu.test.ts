import { describe, expect, it } from 'vitest';
import { stackCpuBetween, stackCpuTable } from '../../bench/stack-cpu';

const snapshot = (entries: Array<[number, string, number]>) => new Map(entries.map(([pid, component, ticks]) => [pid, { component, ticks }]));

describe('the stack CPU table of a bench phase', () => {
  const cpu = stackCpuBetween(
    snapshot([
      [10, 'temporal', 500],
      [11, 'versitygw', 100],
      [12, 'ferry worker', 50],
      [13, 'other', 7],
    ]),
    snapshot([
      [10, 'temporal', 2500],
      [11, 'versitygw', 1100],
      [12, 'ferry worker', 1050],
      // A process that started during the phase counts from zero; one that ended is gone from both sides.
      [20, 'skopeo', 300],
      // A pid reused by another component is not subtracted from the old one's ticks.
      [13, 'postgres', 40],
    ]),
    { total: 1000, idle: 400 },
    { total: 9000, idle: 1400 },
    40,
  );

  it('charges each component the ticks it used during the phase, largest first', () => {
    expect(cpu.components).toEqual([
      { component: 'temporal', cpuSeconds: 20 },
      { component: 'versitygw', cpuSeconds: 10 },
      { component: 'ferry worker', cpuSeconds: 10 },
      { component: 'skopeo', cpuSeconds: 3 },
      { component: 'postgres', cpuSeconds: 0.4 },
    ]);
    expect(cpu.machineSeconds).toBe(80);
    expect(cpu.idleSeconds).toBe(10);
  });

  it('shows each share of the machine and the seconds per image', () => {
    const table = stackCpuTable(cpu, 100);
    expect(table).toContain('| temporal | 20.0 | 25.0% | 0.200 |');
    expect(table).toContain('| idle | 10.0 | 12.5% | – |');
  });
});
