// Which Ferry api a command talks to, and with which token: --api or
// FERRY_API_URL; the token from --token-file or FERRY_TOKEN, never an
// argument, which every process on the machine could see.
//
// `ferry wait` always talks to an api (the configured one by default);
// `ferry stuck|reconcile|backfill` talk to one when it is named, and straight
// to Temporal otherwise.
import { readFileSync } from 'node:fs';
import { AdminRequestError, type ApiAccess } from '../api/client';

/** parseArgs options of a command that can talk to the api. */
export const API_OPTIONS = { api: { type: 'string' }, 'token-file': { type: 'string' } } as const;

export const API_USAGE = '[--api URL] [--token-file FILE] (or FERRY_API_URL, FERRY_TOKEN)';

interface ApiFlags {
  api?: string;
  'token-file'?: string;
}

/** The api named by the flags or the environment, else `fallbackUrl`; null when neither names one. */
export function apiAccessOf(flags: ApiFlags): ApiAccess | null;
export function apiAccessOf(flags: ApiFlags, fallbackUrl: string): ApiAccess;
export function apiAccessOf(flags: ApiFlags, fallbackUrl?: string): ApiAccess | null {
  const apiUrl = flags.api ?? process.env.FERRY_API_URL ?? fallbackUrl;
  if (apiUrl === undefined) return null;
  const token = flags['token-file'] === undefined ? process.env.FERRY_TOKEN : readFileSync(flags['token-file'], 'utf8').trim();
  return { apiUrl, token };
}

/** Runs `command` against the api; a refusal (no admin token, a bad name) is printed and exits 2. */
export async function refusalExits(command: string, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (error) {
    if (!(error instanceof AdminRequestError)) throw error;
    console.error(`ferry ${command}: ${error.message}`);
    return 2;
  }
}
