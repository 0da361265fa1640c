// Waiting for a region from TypeScript: what a deploy pipeline imports.
//
//   import { waitForReplication } from 'ferry/client';
//   await waitForReplication('team/app:v2', { regions: ['westeurope'], timeoutMs: 300_000, token });
//
// The token needs scope read:<prefix> covering the repository (default: the
// FERRY_TOKEN environment variable).
//
// Resolves once the reference is replicated (pulled back, caches purged,
// announced) in every region; rejects with ReplicationFailedError when a
// region failed for good, WaitTimeoutError when time ran out. It long-polls
// GET /v1/wait, riding out an api restart or a network blip until the deadline.
//
// With an admin token, the operator's commands (api/admin.ts):
// stuckReplications (the report `ferry stuck` prints), requestReconcile,
// requestBackfill, and finishedRun, which follows a run until it closes.
import type { BackfillScope } from '../domain/backfill';
import { formatImageReference, parseImageReference } from '../domain/reference';
import type { WaitStatus } from '../domain/wait';
import { describeRegions } from '../domain/wait';
import type { ControlKind, ControlRun } from './control-workflows';
import type { StuckReport } from './stuck-replications';

export interface WaitOptions {
  regions: readonly string[];
  /** Default 5 minutes. */
  timeoutMs?: number;
  /** Ferry's api, default FERRY_API_URL or http://127.0.0.1:8080. */
  apiUrl?: string;
  /** A read token covering the repository, default FERRY_TOKEN. */
  token?: string;
  /** Called with each new status while waiting (for progress output). */
  onProgress?: (status: WaitResult) => void;
  signal?: AbortSignal;
}

export interface WaitResult extends WaitStatus {
  reference: string;
}

export class ReplicationFailedError extends Error {
  constructor(readonly status: WaitResult) {
    super(`${status.reference} failed to replicate:\n  ${describeRegions(status).join('\n  ')}`);
    this.name = 'ReplicationFailedError';
  }
}

export class WaitTimeoutError extends Error {
  constructor(
    readonly reference: string,
    readonly timeoutMs: number,
    readonly status: WaitResult | null,
  ) {
    const where = status ? `:\n  ${describeRegions(status).join('\n  ')}` : ' (the Ferry api never answered)';
    super(`${reference} was not replicated within ${timeoutMs / 1000} s${where}`);
    this.name = 'WaitTimeoutError';
  }
}

/** A request Ferry refused (bad reference, unknown region): retrying cannot help. */
export class WaitRequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'WaitRequestError';
  }
}

/** Ferry's answer to a request it refused: `{ error: { code, message } }`, or the status when the body is not that. */
async function refusalOf(response: Response): Promise<{ code: string; message: string }> {
  const body = (await response.json().catch(() => null)) as { error?: { code: string; message: string } } | null;
  return { code: body?.error?.code ?? String(response.status), message: body?.error?.message ?? `HTTP ${response.status}` };
}

const POLL_SECONDS = 30;
const RETRY_DELAY_MS = 1000;

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}

export async function waitForReplication(reference: string, options: WaitOptions): Promise<WaitResult> {
  const parsed = parseImageReference(reference);
  const timeoutMs = options.timeoutMs ?? 300_000;
  const apiUrl = (options.apiUrl ?? process.env.FERRY_API_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
  const token = options.token ?? process.env.FERRY_TOKEN;
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const deadline = Date.now() + timeoutMs;
  let last: WaitResult | null = null;
  while (!options.signal?.aborted) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    const query = new URLSearchParams({
      repository: parsed.repository,
      ...(parsed.tag !== undefined ? { tag: parsed.tag } : { digest: parsed.digest }),
      regions: options.regions.join(','),
      // Without `after` the api holds until an outcome: a caller showing progress asks for where things stand first.
      timeout: String(last === null && options.onProgress !== undefined ? 0 : Math.min(POLL_SECONDS, Math.ceil(remaining / 1000))),
      ...(last ? { after: last.version } : {}),
    });
    let response: Response;
    try {
      response = await fetch(`${apiUrl}/v1/wait?${query}`, { headers, signal: options.signal });
    } catch {
      // The api restarting, or the network: keep trying until the deadline.
      await sleep(Math.min(RETRY_DELAY_MS, remaining), options.signal);
      continue;
    }
    if (response.status === 429) {
      // The api holds as many waits as it may: ask again when it says.
      const seconds = Number(response.headers.get('retry-after') ?? 1);
      await response.body?.cancel();
      await sleep(Math.min(Math.max(seconds, 1) * 1000, remaining), options.signal);
      continue;
    }
    if (response.status >= 400 && response.status < 500) {
      const { code, message } = await refusalOf(response);
      throw new WaitRequestError(code, message);
    }
    if (!response.ok) {
      await sleep(Math.min(RETRY_DELAY_MS, remaining), options.signal);
      continue;
    }
    const status = (await response.json()) as WaitResult;
    if (status.version !== last?.version) options.onProgress?.(status);
    last = status;
    if (status.state === 'replicated') return status;
    if (status.state === 'failed') throw new ReplicationFailedError(status);
  }
  if (options.signal?.aborted) throw options.signal.reason;
  throw new WaitTimeoutError(formatImageReference(parsed), timeoutMs, last);
}

/** Where Ferry's api is, and the token to call it with. */
export interface ApiAccess {
  apiUrl: string;
  token?: string;
}

/** A request the admin routes refused (no admin token, a bad body): retrying cannot help. */
export class AdminRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'AdminRequestError';
  }
}

type Reviver = (key: string, value: unknown) => unknown;

async function adminCall<T>(access: ApiAccess, method: 'GET' | 'POST', path: string, body?: object, reviver?: Reviver): Promise<T> {
  const headers: Record<string, string> = access.token ? { authorization: `Bearer ${access.token}` } : {};
  const url = `${access.apiUrl.replace(/\/$/, '')}${path}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (error) {
    throw new Error(`cannot reach Ferry's api at ${access.apiUrl}: ${(error as Error).cause ?? (error as Error).message}`);
  }
  if (response.ok) return JSON.parse(await response.text(), reviver) as T;
  const { code, message } = await refusalOf(response);
  if (response.status < 500) throw new AdminRequestError(response.status, code, message);
  throw new Error(`Ferry's api answered ${response.status} ${code}: ${message}`);
}

/** The fields of a stuck report that hold times, which JSON carries as ISO strings. */
const STUCK_REPORT_DATES = new Set(['now', 'lastProgressAt', 'nextRetryAt', 'lastHeartbeatAt']);
const stuckReportDates: Reviver = (key, value) => (STUCK_REPORT_DATES.has(key) && typeof value === 'string' ? new Date(value) : value);

/** Running replications without progress for `olderThan` (`90s`, `10m`, `1h30m`), as `ferry stuck` reports them. */
export async function stuckReplications(access: ApiAccess, olderThan: string): Promise<StuckReport> {
  return adminCall(access, 'GET', `/v1/admin/stuck?${new URLSearchParams({ olderThan })}`, undefined, stuckReportDates);
}

/** Starts a reconcile of `repositories` (every one without); the run, completed if it finished within the api's wait. */
export async function requestReconcile(access: ApiAccess, repositories?: readonly string[]): Promise<ControlRun<'reconcile'>> {
  return adminCall(access, 'POST', '/v1/admin/reconcile', repositories ? { repositories } : {});
}

/** Starts a backfill of the repositories named or all, into the regions in `to` or every one: the run, and the scope the api runs it with. */
export async function requestBackfill(access: ApiAccess, request: { repositories?: readonly string[]; all?: true; to?: readonly string[] }): Promise<ControlRun<'backfill'> & { scope: BackfillScope }> {
  return adminCall(access, 'POST', '/v1/admin/backfill', request);
}

const RUN_WAIT_SECONDS = 30;

/** Follows `run` until it has closed, holding each request up to 30 s at the api. */
export async function finishedRun<K extends ControlKind>(access: ApiAccess, run: ControlRun<K>): Promise<ControlRun<K>> {
  let current = run;
  while (current.status === 'running') {
    const query = new URLSearchParams({ workflowId: current.workflowId, wait: String(RUN_WAIT_SECONDS) });
    current = await adminCall<ControlRun<K>>(access, 'GET', `/v1/admin/runs?${query}`);
  }
  return current;
}
