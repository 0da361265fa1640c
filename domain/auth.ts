// Who may do what at Ferry's api. Every caller presents a bearer token; each
// configured token carries scopes:
//
//   ingest:<region>   POST that region's notifications, nothing else
//   read:<prefix>     status, lists and waits of repositories under a prefix:
//                     `team-a` covers team-a and team-a/*, `*` covers all
//   metrics           GET /metrics
//   admin             everything but ingest: any repository, the events of
//                     any replication, the metrics
//
// A token is looked up by comparing its SHA-256 against every configured
// token's in constant time, so neither the answer nor its timing says how
// much of a guess was right.
import { createHash, timingSafeEqual } from 'node:crypto';
import { InvalidReferenceError, parseRepositoryName } from './reference';

export type Scope = { kind: 'ingest'; region: string } | { kind: 'read'; prefix: string } | { kind: 'metrics' } | { kind: 'admin' };

/** A configured token, resolved: its name (for logs), its secret and its scopes. */
export interface ApiToken {
  name: string;
  secret: string;
  scopes: Scope[];
}

/** What a route needs of its caller (route config `access`). */
export type Access = 'public' | 'ingest' | 'read' | 'metrics' | 'admin';

export const ALL_REPOSITORIES = '*';

export class ScopeError extends Error {}

/** Parses one scope as written in the config; `regions` are the configured region names. */
export function parseScope(text: string, regions: readonly string[]): Scope {
  if (text === 'admin' || text === 'metrics') return { kind: text };
  const colon = text.indexOf(':');
  const [kind, value] = colon < 0 ? [text, ''] : [text.slice(0, colon), text.slice(colon + 1)];
  if (kind === 'ingest') {
    if (!regions.includes(value)) throw new ScopeError(`"${text}": ingest needs a configured region (${regions.join(', ')})`);
    return { kind, region: value };
  }
  if (kind === 'read') {
    // A trailing slash says the same as none: `team-a/` covers team-a/*.
    const prefix = value.replace(/\/$/, '');
    if (prefix === ALL_REPOSITORIES) return { kind, prefix };
    try {
      return { kind, prefix: parseRepositoryName(prefix) };
    } catch (error) {
      if (!(error instanceof InvalidReferenceError)) throw error;
      throw new ScopeError(`"${text}": read needs a repository prefix (team-a, team-a/app) or *`);
    }
  }
  throw new ScopeError(`"${text}" is not a scope: use ingest:<region>, read:<prefix>, read:*, metrics or admin`);
}

export function formatScope(scope: Scope): string {
  switch (scope.kind) {
    case 'ingest':
      return `ingest:${scope.region}`;
    case 'read':
      return `read:${scope.prefix}`;
    default:
      return scope.kind;
  }
}

function digestOf(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** The configured tokens, looked up in constant time. */
export class TokenSet {
  private readonly entries: { token: ApiToken; digest: Buffer }[];

  constructor(tokens: readonly ApiToken[]) {
    this.entries = tokens.map((token) => ({ token, digest: digestOf(token.secret) }));
  }

  /** The token whose secret is `given`, comparing against every one; null when none is. */
  find(given: string): ApiToken | null {
    const digest = digestOf(given);
    let found: ApiToken | null = null;
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.digest, digest)) found = entry.token;
    }
    return found;
  }
}

/** The secret of an `Authorization: Bearer <secret>` header; null when the header is absent or another scheme. */
export function bearerSecret(header: string | undefined): string | null {
  const match = /^Bearer +(\S+) *$/i.exec(header ?? '');
  return match ? match[1]! : null;
}

/** What a token may read: every repository, or those under its prefixes. */
export class ReadGrant {
  private constructor(
    readonly all: boolean,
    readonly prefixes: readonly string[],
  ) {}

  static of(token: ApiToken): ReadGrant {
    const prefixes = token.scopes.flatMap((scope) => (scope.kind === 'read' ? [scope.prefix] : []));
    const all = token.scopes.some((scope) => scope.kind === 'admin') || prefixes.includes(ALL_REPOSITORIES);
    return new ReadGrant(all, all ? [] : [...new Set(prefixes)]);
  }

  /** True when the token may read anything at all. */
  get any(): boolean {
    return this.all || this.prefixes.length > 0;
  }

  covers(repository: string): boolean {
    return this.all || this.prefixes.some((prefix) => repository === prefix || repository.startsWith(`${prefix}/`));
  }

  /**
   * The grant as two SQL arrays for `repository = ANY($exact) OR repository LIKE ANY($under)`;
   * null when it covers every repository. LIKE's wildcards in a prefix (`_`) are escaped.
   */
  sqlFilter(): { exact: string[]; under: string[] } | null {
    if (this.all) return null;
    return { exact: [...this.prefixes], under: this.prefixes.map((prefix) => `${prefix.replace(/[\\%_]/g, '\\$&')}/%`) };
  }
}

/** Whether `token` may use a route needing `access` (read and ingest are narrowed further by repository and region). */
export function permits(token: ApiToken, access: Exclude<Access, 'public'>, region?: string): boolean {
  const has = (kind: Scope['kind']) => token.scopes.some((scope) => scope.kind === kind);
  switch (access) {
    case 'ingest':
      return token.scopes.some((scope) => scope.kind === 'ingest' && scope.region === region);
    case 'read':
      return ReadGrant.of(token).any;
    case 'metrics':
      return has('metrics') || has('admin');
    case 'admin':
      return has('admin');
  }
}
