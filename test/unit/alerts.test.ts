// Ferry's Prometheus alerting rules (stack/ferry-alerts.yml): valid, each
// firing on what should fire it and not on healthy series (promtool test
// rules, test/unit/alerts.promtool.yml), written over metrics Ferry exports,
// and each with its runbook line in the README.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = new URL('../../', import.meta.url).pathname;
const read = (path: string) => readFileSync(`${root}${path}`, 'utf8');
const rules = (parse(read('stack/ferry-alerts.yml')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> }).groups.flatMap((group) => group.rules);

async function promtool(...args: string[]): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)('promtool', args, { cwd: root });
    return stdout;
  } catch (error) {
    const failed = error as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (failed.code === 'ENOENT') throw new Error('promtool is not installed: `npm run stack -- install` installs Debian\'s prometheus package');
    throw new Error(`promtool ${args.join(' ')} failed:\n${failed.stdout ?? ''}${failed.stderr ?? ''}`);
  }
}

describe("Ferry's alerting rules", () => {
  it('are valid, and fire on exactly what the promtool tests say', async () => {
    expect(await promtool('check', 'rules', 'stack/ferry-alerts.yml')).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(await promtool('test', 'rules', 'test/unit/alerts.promtool.yml')).toContain('SUCCESS');
    const tested = new Set([...read('test/unit/alerts.promtool.yml').matchAll(/alertname: (\w+)/g)].map((match) => match[1]));
    expect(rules.map((rule) => rule.alert).filter((alert) => !tested.has(alert)), 'alerts without a promtool test').toEqual([]);
  });

  it('use only metrics Ferry exports', () => {
    const exported = new Set([...`${read('activities/metrics.ts')}${read('api/metrics.ts')}`.matchAll(/'(ferry_\w+)'/g)].map((match) => match[1]));
    const used = rules.flatMap((rule) => [...rule.expr.matchAll(/\b(ferry_\w+?)(?:_bucket|_count|_sum)?\b/g)].map((match) => match[1]!));
    expect(used.length).toBeGreaterThan(0);
    expect(used.filter((metric) => !exported.has(metric))).toEqual([]);
  });

  it('each have a runbook line in the README', () => {
    const section = read('README.md').split('\n### Alerts\n')[1]?.split('\n## ')[0] ?? '';
    expect(rules.map((rule) => rule.alert).filter((alert) => !section.includes(`**${alert}**`))).toEqual([]);
  });
});
