// The environment every Ferry process of the stack tests runs with:
// stack/local.env (throwaway credentials for loopback servers), the caller's
// env, and FERRY_CONFIG pointing at a configuration whose database the global
// setup creates fresh for each run.
import { readFileSync } from 'node:fs';

export const repoRoot = new URL('../../', import.meta.url).pathname;

/** The configuration file of a test run: the local stack, with its own database. */
export const testConfigPath = `${repoRoot}.stack/run/test-config.json`;
export const TEST_DATABASE = 'ferry_test';

export function localStackEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(new URL('../../stack/local.env', import.meta.url), 'utf8').split('\n')) {
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) env[match[1]!] = match[2]!;
  }
  return { ...env, ...(process.env as Record<string, string>), FERRY_CONFIG: testConfigPath };
}
