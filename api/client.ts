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
import { formatImageReference, parseImageReference } from '../domain/reference';
import type { WaitStatus } from '../domain/wait';
import { describeRegions } from '../domain/wait';

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
      const body = (await response.json().catch(() => null)) as { error?: { code: string; message: string } } | null;
      throw new WaitRequestError(body?.error?.code ?? String(response.status), body?.error?.message ?? `HTTP ${response.status}`);
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
