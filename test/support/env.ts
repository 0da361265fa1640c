// The environment every Ferry process of the local stack runs with:
// stack/local.env (throwaway credentials for loopback servers) under the caller's env.
import { readFileSync } from 'node:fs';

export const repoRoot = new URL('../../', import.meta.url).pathname;

export function localStackEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(new URL('../../stack/local.env', import.meta.url), 'utf8').split('\n')) {
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) env[match[1]!] = match[2]!;
  }
  return { ...env, ...(process.env as Record<string, string>) };
}
