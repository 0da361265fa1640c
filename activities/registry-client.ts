// Requests to one region's registry (or a cache in front of it) as a puller
// there makes them, or, for a registry-API region, as a pusher: every request
// bounded in time, and logged in when the registry asks. A 401 challenge is
// answered once: Basic with the region's credentials, or Bearer by exchanging
// them at the challenge's realm for a token (the Docker token flow), kept per
// scope until it expires. A refusal left after that (401 or 403) fails the
// attempt here, for every caller: it says nothing of what a puller gets.
// Credentials come from the environment (domain/config.ts registryAuth) and
// never appear in an error, a log line or a workflow history.
import { ApplicationFailure } from '@temporalio/common';
import type { RegistryCredentials } from '../domain/config';
import { FERRY_USER_AGENT, parseAuthChallenge, repositoryScopes, type AuthChallenge, type RegistryAccess } from '../domain/registry-api';

/** A token whose answer names no lifetime lives this long (the Docker token spec's default). */
const DEFAULT_TOKEN_SECONDS = 60;
/** Tokens are renewed this long before they expire. */
const TOKEN_MARGIN_MS = 5_000;

export class RegistryAuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryAuthError';
  }
}

export interface RegistryRequest {
  method?: 'GET' | 'HEAD' | 'PURGE' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  headers?: Record<string, string>;
  /** Sent as is, again after a login (so never a stream). */
  body?: Uint8Array;
  /** The repository asked about: the scope of a token. */
  repository: string;
  /** What the request does there (default pull), and the repository a cross-repository mount reads. */
  access?: RegistryAccess;
  from?: string;
  /** The body is read as a stream, for as long as it takes: the time limit holds until the answer starts (its reader bounds the rest). */
  streaming?: boolean;
  signal: AbortSignal;
}

export class RegistryClient {
  /** Authorization per scope (Bearer) or for every request (Basic), learned from the registry's last challenge. */
  private readonly authorizations = new Map<string, { header: string; expiresAt: number }>();
  private basic: string | null = null;

  constructor(
    private readonly credentials: RegistryCredentials | null,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Sends the request, logging in if the registry challenges it; the response
   * is the registry's answer, whose body the caller reads. Throws a retryable
   * NotPullable failure when the registry still refuses (no login configured,
   * or the login refused).
   */
  async fetch(url: string, request: RegistryRequest): Promise<Response> {
    const response = await this.loggedIn(url, request);
    if (response.status !== 401 && response.status !== 403) return response;
    await response.arrayBuffer();
    const hint = this.credentials === null ? 'the region names no registryAuth' : "check the region's registryAuth and its credentials";
    throw ApplicationFailure.retryable(`${url} refused the login (${response.status}): ${hint}`, 'NotPullable');
  }

  private async loggedIn(url: string, request: RegistryRequest): Promise<Response> {
    const send = async (authorization: string | null) => {
      // Bounded: a registry that stops answering fails the attempt, which Temporal retries. A streamed
      // body is read for as long as it takes (its reader bounds the silences): the limit ends with the answer.
      const answered = new AbortController();
      const timer = request.streaming === true ? setTimeout(() => answered.abort(new DOMException(`${url}: no answer within ${this.timeoutMs} ms`, 'TimeoutError')), this.timeoutMs) : null;
      try {
        return await fetch(url, {
          method: request.method ?? 'GET',
          // Ferry's own User-Agent: the registry's notification of this change says it is Ferry's (an echo, not replicated back).
          headers: { 'User-Agent': FERRY_USER_AGENT, ...request.headers, ...(authorization === null ? {} : { Authorization: authorization }) },
          ...(request.body === undefined ? {} : { body: request.body }),
          signal: AbortSignal.any([request.signal, timer === null ? AbortSignal.timeout(this.timeoutMs) : answered.signal]),
        });
      } finally {
        if (timer !== null) clearTimeout(timer);
      }
    };
    const scopes = repositoryScopes(request.repository, request.access ?? 'pull', request.from);
    const key = scopes.join(' ');
    const response = await send(this.known(key));
    if (response.status !== 401 || this.credentials === null) return response;
    const challenge = parseAuthChallenge(response.headers.get('www-authenticate'));
    if (challenge === null) return response;
    await response.arrayBuffer();
    return send(await this.login(challenge, key, scopes, request.signal));
  }

  private known(scope: string): string | null {
    const bearer = this.authorizations.get(scope);
    if (bearer !== undefined && bearer.expiresAt > Date.now()) return bearer.header;
    return this.basic;
  }

  /** Logs in for `scopes` (those a Bearer challenge names too), kept under `key` until the token expires. */
  private async login(challenge: AuthChallenge, key: string, scopes: string[], signal: AbortSignal): Promise<string> {
    const { username, password } = this.credentials!;
    const basic = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    if (challenge.scheme === 'basic') {
      this.basic = basic;
      return basic;
    }
    const tokenUrl = new URL(challenge.realm);
    if (challenge.service !== null) tokenUrl.searchParams.set('service', challenge.service);
    for (const scope of new Set([...scopes, ...(challenge.scope === null ? [] : challenge.scope.split(' '))])) tokenUrl.searchParams.append('scope', scope);
    const answer = await fetch(tokenUrl, { headers: { Authorization: basic, 'User-Agent': FERRY_USER_AGENT }, signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]) });
    const body = (await answer.json().catch(() => null)) as { token?: unknown; access_token?: unknown; expires_in?: unknown } | null;
    const token = body?.token ?? body?.access_token;
    if (answer.status !== 200 || typeof token !== 'string' || token === '') {
      throw new RegistryAuthError(`the token service at ${tokenUrl.origin}${tokenUrl.pathname} answered ${answer.status} without a token`);
    }
    const seconds = typeof body?.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_SECONDS;
    const header = `Bearer ${token}`;
    this.authorizations.set(key, { header, expiresAt: Date.now() + seconds * 1000 - TOKEN_MARGIN_MS });
    return header;
  }
}
