// stack/local.env: the local stack's throwaway credentials for loopback
// servers, as KEY=value lines. Read here only, for the tests, the bench and
// the docker-compose check (Ferry's own processes get it from node --env-file).
import { readFileSync } from 'node:fs';

export const LOCAL_ENV_PATH = new URL('../stack/local.env', import.meta.url).pathname;

/** The KEY=value lines of an env file (comments and blank lines skipped), as node --env-file reads the simple ones. */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) env[match[1]!] = match[2]!;
  }
  return env;
}

/** stack/local.env, parsed. */
export function localEnv(): Record<string, string> {
  return parseEnvFile(readFileSync(LOCAL_ENV_PATH, 'utf8'));
}
