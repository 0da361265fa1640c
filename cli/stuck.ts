// `ferry stuck [--older-than 10m] [--api URL]`: the replications that made no
// progress for that long, the region(s) each one waits on, and why. Found by
// api/stuck-replications.ts, straight on Temporal, or through the api's
// GET /v1/admin/stuck when an api is named (cli/api-access.ts); printed by
// stuck-report.ts.
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { stuckReplications } from '../api/client';
import { stuckReport, type StuckReport } from '../api/stuck-replications';
import { temporalConnectOptions, type ResolvedConfig } from '../domain/config';
import { API_OPTIONS, API_USAGE, apiAccessOf, refusalExits } from './api-access';
import { parseDuration } from '../domain/duration';
import { formatStuckReport } from './stuck-report';

export const STUCK_USAGE = `ferry stuck [--older-than 10m] ${API_USAGE}`;

async function reportFromTemporal(config: ResolvedConfig, olderThanMs: number): Promise<StuckReport> {
  const connection = await Connection.connect(temporalConnectOptions(config));
  try {
    return await stuckReport(new Client({ connection, namespace: config.temporal.namespace }), olderThanMs);
  } finally {
    await connection.close();
  }
}

export async function stuckCommand(args: string[], config: () => ResolvedConfig): Promise<number> {
  const { values } = parseArgs({ args, options: { 'older-than': { type: 'string', default: '10m' }, ...API_OPTIONS } });
  let olderThanMs: number;
  try {
    olderThanMs = parseDuration(values['older-than']);
  } catch (error) {
    console.error(`ferry stuck --older-than: ${(error as Error).message}`);
    return 2;
  }
  const api = apiAccessOf(values);
  return refusalExits('stuck', async () => {
    const report = api ? await stuckReplications(api, values['older-than']) : await reportFromTemporal(config(), olderThanMs);
    console.log(formatStuckReport(report.replications, report.olderThanMs, report.now));
    return 0;
  });
}
