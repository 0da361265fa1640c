// `ferry wait <repository>:<tag>|<repository>@<digest> --region R[,R…] [--timeout 5m] [--api URL] [--token-file F]`
//
// The read token comes from --token-file or FERRY_TOKEN (cli/api-access.ts).
// Exits 0 once the reference is replicated in every region named, 1 when a
// region failed for good, 124 on timeout (as timeout(1) does), 2 on bad usage.
// On a terminal it redraws one progress line per region on stderr; otherwise
// it is quiet but for the outcome.
import { parseArgs } from 'node:util';
import { ReplicationFailedError, WaitRequestError, WaitTimeoutError, waitForReplication, type ApiAccess, type WaitResult } from '../api/client';
import type { ResolvedConfig } from '../domain/config';
import { InvalidReferenceError } from '../domain/reference';
import { describeRegions } from '../domain/wait';
import { API_OPTIONS, API_USAGE, apiAccessOf } from './api-access';
import { parseDuration } from '../domain/duration';

export const WAIT_USAGE = `ferry wait <repository>:<tag>|<repository>@<digest> --region R[,R...] [--timeout 5m] ${API_USAGE}`;

export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_TIMEOUT = 124;

/** Redraws the region lines in place on a terminal. */
function terminalProgress(stream: NodeJS.WriteStream): (status: WaitResult) => void {
  let drawn = 0;
  return (status) => {
    const lines = [`${status.reference}: ${status.state}`, ...describeRegions(status).map((line) => `  ${line}`)];
    if (drawn > 0) stream.write(`\x1b[${drawn}A`);
    for (const line of lines) stream.write(`\x1b[2K${line}\n`);
    drawn = lines.length;
  };
}

export async function waitCommand(config: ResolvedConfig, args: string[]): Promise<number> {
  let reference: string;
  let regions: string[];
  let timeoutMs: number;
  let api: ApiAccess;
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { region: { type: 'string', multiple: true }, timeout: { type: 'string', default: '5m' }, ...API_OPTIONS },
    });
    if (positionals.length !== 1 || !values.region) throw new Error('give one reference and --region');
    reference = positionals[0]!;
    regions = values.region.flatMap((value) => value.split(',')).filter(Boolean);
    timeoutMs = parseDuration(values.timeout);
    api = apiAccessOf(values, `http://${config.ingest.host}:${config.ingest.port}`);
  } catch (error) {
    console.error(`ferry wait: ${(error as Error).message}\nusage: ${WAIT_USAGE}`);
    return EXIT_USAGE;
  }
  const onProgress = process.stderr.isTTY ? terminalProgress(process.stderr) : undefined;
  try {
    const status = await waitForReplication(reference, { regions, timeoutMs, ...api, onProgress });
    if (!onProgress) console.log(`${status.reference}: replicated in ${regions.join(', ')}`);
    return 0;
  } catch (error) {
    if (error instanceof ReplicationFailedError) {
      console.error(`ferry wait: ${error.message}`);
      return EXIT_FAILED;
    }
    if (error instanceof WaitTimeoutError) {
      console.error(`ferry wait: ${error.message}`);
      return EXIT_TIMEOUT;
    }
    if (error instanceof WaitRequestError || error instanceof InvalidReferenceError) {
      console.error(`ferry wait: ${error.message}`);
      return EXIT_USAGE;
    }
    throw error;
  }
}
