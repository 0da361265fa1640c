// Ferry's settings, declared once. Everything else receives a ResolvedConfig
// and never reads process.env itself.
//
// Sources, in order: schema defaults (the local four-region stack), then the
// JSON file named by FERRY_CONFIG (if set). Secrets are never in the file: a
// region names the environment variables that hold its S3 credentials and its
// registry's ingest token, and `auth.tokens` the variables of the api's other
// tokens (or `auth.tokensFile` a file of them, kept apart from the config).
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { formatScope, parseScope, ScopeError, type ApiToken } from './auth';
import { compileRule, ruleAdmits, RuleError } from './rules';
import { REGION_QUEUE_PREFIX } from './workflow-contract';

const regionName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,30}$/, 'must be lowercase letters, digits and dashes, starting with a letter');

const envVarName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name');

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

const regionSchema = z.object({
  name: regionName,
  /**
   * The bucket the region's registry stores in, which Ferry reads and writes
   * in Distribution's layout. Absent: a registry-API region, reached only
   * through its registry's HTTP API at `registryUrl` with `registryAuth`
   * (activities/registry-repository.ts): ECR, ACR, GHCR, Harbor, Quay, or a
   * Distribution whose bucket Ferry may not touch.
   */
  s3: z.object({
    endpoint: httpUrl,
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name'),
    rootDirectory: z.string().default(''),
    signingRegion: z.string().default('us-east-1'),
    accessKeyIdEnv: envVarName,
    secretAccessKeyEnv: envVarName,
  }).optional(),
  registryUrl: httpUrl,
  /** The variable holding the token this region's registry sends with its notifications (scope ingest:<region>). */
  ingestTokenEnv: envVarName.optional(),
  /**
   * The registry asks clients to log in: the variables holding the user and
   * password Ferry uses there (the pull check; every read and write of a
   * registry-API region), answered to a Basic challenge or exchanged at the
   * realm of a Bearer challenge for a token.
   */
  registryAuth: z.object({ usernameEnv: envVarName, passwordEnv: envVarName }).optional(),
  cachePurgeUrls: z.array(httpUrl).default([]),
  /**
   * What one worker sends into this region at most, over all its work there:
   * blob copies at once, and blob bytes per second (activities/region-limits.ts).
   */
  limits: z
    .object({ blobCopies: z.number().int().min(1).max(256).optional(), bytesPerSecond: z.number().int().min(1024).optional() })
    .optional(),
  /**
   * The regions whose pushes reach this one; default every other region. A
   * worker serving this region's queue holds the S3 credentials of this
   * region and of these only.
   */
  sources: z.array(regionName).optional(),
});

/** PEM files of a TLS connection: the CA that signed the server's certificate, and this client's certificate and key (mutual TLS). */
const tlsFiles = z.object({
  caFile: z.string().min(1).optional(),
  certFile: z.string().min(1).optional(),
  keyFile: z.string().min(1).optional(),
});

const tokenName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be letters, digits, dots, dashes and underscores');
const scopeList = z.array(z.string()).min(1, 'give at least one scope');
const apiTokenSchema = z.object({ name: tokenName, tokenEnv: envVarName, scopes: scopeList });
const tokensFileSchema = z.array(z.object({ name: tokenName, token: z.string().min(16, 'must be at least 16 characters'), scopes: scopeList }));

const LOCAL_ENDPOINT_A = 'http://127.0.0.1:9000';
const LOCAL_ENDPOINT_B = 'http://127.0.0.1:9002';

function localRegion(name: string, port: number, endpoint: string, credentials: 'A' | 'B', loginRequired = false) {
  const variable = `FERRY_REGISTRY_${name.toUpperCase()}`;
  return {
    name,
    s3: {
      endpoint,
      bucket: `region-${name}`,
      rootDirectory: '',
      signingRegion: 'us-east-1',
      accessKeyIdEnv: `FERRY_S3_${credentials}_ACCESS_KEY_ID`,
      secretAccessKeyEnv: `FERRY_S3_${credentials}_SECRET_ACCESS_KEY`,
    },
    registryUrl: `http://127.0.0.1:${port}`,
    ingestTokenEnv: `FERRY_INGEST_TOKEN_${name.toUpperCase()}`,
    ...(loginRequired ? { registryAuth: { usernameEnv: `${variable}_USERNAME`, passwordEnv: `${variable}_PASSWORD` } } : {}),
    cachePurgeUrls: [`http://127.0.0.1:${port + 1080}`],
  };
}

/** A local region Ferry reaches through its registry's API only: no bucket is named, and its registry hands out tokens (stack/token-server.ts). */
function localApiRegion(name: string, port: number) {
  const variable = `FERRY_REGISTRY_${name.toUpperCase()}`;
  return {
    name,
    registryUrl: `http://127.0.0.1:${port}`,
    ingestTokenEnv: `FERRY_INGEST_TOKEN_${name.toUpperCase()}`,
    registryAuth: { usernameEnv: `${variable}_USERNAME`, passwordEnv: `${variable}_PASSWORD` },
    cachePurgeUrls: [`http://127.0.0.1:${port + 1080}`],
  };
}

export const LOCAL_REGIONS = [
  localRegion('eastus', 5001, LOCAL_ENDPOINT_A, 'A'),
  localRegion('westeurope', 5002, LOCAL_ENDPOINT_A, 'A'),
  // The far region: its registry requires a login (htpasswd), its storage is
  // reached through a fault-injecting proxy (stack/topology.ts).
  localRegion('southeastasia', 5003, LOCAL_ENDPOINT_B, 'B', true),
  // A region whose bucket Ferry is given no credentials for: reached through the registry API with a token login.
  localApiRegion('centralus', 5004),
];

export const configSchema = z
  .object({
    regions: z
      .array(regionSchema)
      .min(2, 'needs at least two regions to replicate between')
      .default(LOCAL_REGIONS),
    temporal: z
      .object({
        address: z.string().default('127.0.0.1:7233'),
        namespace: z.string().default('default'),
        controlTaskQueue: z.string().default('ferry-control'),
        /** TLS to the frontend (present: on); with certFile and keyFile, mutual TLS. `serverName` overrides the name checked. */
        tls: tlsFiles.extend({ serverName: z.string().min(1).optional() }).optional(),
        /** The variable holding an API key sent with every call (Temporal Cloud); implies TLS. */
        apiKeyEnv: envVarName.optional(),
      })
      .prefault({}),
    /** TLS and certificates go in the URL (sslmode=verify-full&sslrootcert=/path/ca.pem, sslcert, sslkey), as libpq reads them. */
    postgresUrl: z.string().startsWith('postgres', 'must be a postgres:// URL').default('postgres://postgres@127.0.0.1:5432/ferry'),
    /** The variable holding the password of postgresUrl's user, kept out of the file. */
    postgresPasswordEnv: envVarName.optional(),
    natsUrl: z.string().default('nats://127.0.0.1:4222'),
    /** How Ferry's workers authenticate to NATS: a token (variable), or a .creds file (JWT and NKey seed); TLS when `tls` is present. */
    nats: z
      .object({ tokenEnv: envVarName.optional(), credsFile: z.string().min(1).optional(), tls: tlsFiles.optional() })
      .refine((nats) => nats.tokenEnv === undefined || nats.credsFile === undefined, 'give tokenEnv or credsFile, not both')
      .prefault({}),
    ingest: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(1).max(65535).default(8080),
        /** Deprecated: one token every region's registry may send (ingest:<every region>); give each region its ingestTokenEnv. */
        tokenEnv: envVarName.optional(),
        maxBodyBytes: z.number().int().min(1024).default(256 * 1024),
        /** How far ahead of Ferry's clock a registry's event time may be; later times count as now + this (domain/event-time.ts). */
        maxClockSkewSeconds: z.number().int().min(0).max(3600).default(10),
        /**
         * A change recorded from a notification whose workflow did not start
         * (Temporal was down, the api died in between) is started by the
         * api's sweeper once it is this old; the sweeper looks this often.
         */
        sweepSeconds: z.number().int().min(1).max(3600).default(15),
        /**
         * Long polls (GET /v1/wait) held at once, in all and per token; one
         * more is answered 429 with Retry-After (api/wait-hub.ts).
         */
        waits: z
          .object({ maxWaits: z.number().int().min(1).default(5000), maxWaitsPerToken: z.number().int().min(1).default(2000) })
          .prefault({}),
        /** Postgres connections of the read routes (status, lists, waits), apart from ingest's, so reads cannot starve ingest. */
        readPoolSize: z.number().int().min(1).max(100).default(4),
      })
      .prefault({}),
    auth: z
      .object({
        /**
         * The api's tokens beside the regions' ingest tokens: who may read
         * (read:<repository prefix>, read:*), scrape /metrics (metrics) or do
         * anything but ingest (admin). Domain: domain/auth.ts.
         */
        tokens: z.array(apiTokenSchema).default([
          { name: 'reader', tokenEnv: 'FERRY_READ_TOKEN', scopes: ['read:*'] },
          { name: 'admin', tokenEnv: 'FERRY_ADMIN_TOKEN', scopes: ['admin'] },
        ]),
        /** A JSON file of more tokens, `[{ "name", "token", "scopes" }]`, read at start (a mounted secret). */
        tokensFile: z.string().min(1).optional(),
      })
      .prefault({}),
    /** Ordered replication rules; the first matching a change decides its regions (domain/rules.ts). */
    rules: z
      .array(
        z.object({
          repository: z.string().min(1),
          tag: z.string().min(1).optional(),
          regions: z.array(regionName).min(1).optional(),
          exclude: z.array(regionName).min(1).optional(),
        }),
      )
      .default([]),
    replication: z
      .object({
        blobConcurrency: z.number().int().min(1).max(64).default(8),
        partSizeBytes: z.number().int().min(5 * 1024 * 1024).default(16 * 1024 * 1024),
        /** Blob bytes a worker holds in memory at once over all its copies (activities/byte-budget.ts). */
        partBudgetBytes: z.number().int().min(5 * 1024 * 1024).default(96 * 1024 * 1024),
        /**
         * How long a replication waits for the notification of a change the
         * target region's registry made to the same tag, before its storage's
         * write time decides (activities/tags.ts).
         */
        awaitNotificationSeconds: z.number().int().min(0).max(600).default(10),
        /**
         * A storage or registry request that sends or receives nothing for
         * this long fails its attempt (which Temporal retries): a hung
         * connection never holds a region, its lock or its Postgres client.
         */
        requestIdleSeconds: z.number().int().min(1).max(600).default(30),
        /**
         * The lease on copying one blob into one region, shared by every
         * worker (store/blob-claims.ts): renewed while the copy runs; after a
         * worker dies, its blobs wait this long before another worker copies them.
         */
        claimSeconds: z.number().int().min(3).max(600).default(15),
      })
      .prefault({}),
    reconcile: z
      .object({
        /** How often the ferry-reconcile schedule compares every region's tags with the event store. */
        every: z.string().regex(/^\d+(s|m|h)$/, 'must be a duration such as 30s, 10m or 1h').default('10m'),
        /** Changes younger than this may still be in flight, and are left to the next scan. */
        settleSeconds: z.number().int().min(0).default(60),
        /** Off for test runs, whose fresh event store knows nothing of earlier runs' buckets. */
        scheduled: z.boolean().default(true),
        /**
         * More than this share of a region's recorded tags gone from its
         * storage at once (an emptied or wrong bucket) halts reconcile for
         * that region instead of refilling it (domain/drift.ts).
         */
        haltShare: z.number().min(0).max(1).default(0.25),
        /**
         * Reconcile and backfill keep their plans in Postgres (store/plans.ts)
         * and take them this many tags at a time, so no Temporal payload
         * grows with the number of tags.
         */
        pageSize: z.number().int().min(1).max(1000).default(200),
        /**
         * Pages one workflow run takes before it continues as new, so no
         * history grows with the number of tags: a page of 200 repairs costs
         * about 1,080 history events (bench:reconcile), so 4 pages stay well
         * under Temporal's 10,240-event warning.
         */
        pagesPerRun: z.number().int().min(1).max(100).default(4),
      })
      // About 5.4 history events per repair: a run stays far from Temporal's 51,200-event limit.
      .refine((reconcile) => reconcile.pageSize * reconcile.pagesPerRun <= 5000, { message: 'pageSize × pagesPerRun must be at most 5000 (repairs per workflow run)', path: ['pagesPerRun'] })
      .prefault({}),
    worker: z
      .object({
        /** Task queues this worker polls; default: the control queue and every region's. */
        queues: z.array(z.string().min(1)).min(1).optional(),
        /**
         * Open workflows a worker keeps in memory between their tasks; one evicted
         * is replayed from its history at its next task. Unset: the SDK's default,
         * from the heap limit (about 2,300 on a 4 GiB heap).
         */
        maxCachedWorkflows: z.number().int().min(2).optional(),
        /** Prometheus: GET http://host:port/metrics; the Temporal SDK's own exporter listens on 127.0.0.1:runtimePort and is merged in. */
        metrics: z
          .object({
            host: z.string().default('127.0.0.1'),
            port: z.number().int().min(1).max(65535).default(9464),
            runtimePort: z.number().int().min(1).max(65535).default(9465),
          })
          .prefault({}),
      })
      .prefault({}),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
  })
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    config.regions.forEach((region, index) => {
      if (seen.has(region.name)) {
        ctx.addIssue({ code: 'custom', path: ['regions', index, 'name'], message: `duplicate region name "${region.name}"` });
      }
      seen.add(region.name);
    });
    const names = new Set(config.regions.map((region) => region.name));
    config.regions.forEach((region, index) =>
      region.sources?.forEach((source, at) => {
        if (source === region.name || !names.has(source)) {
          ctx.addIssue({ code: 'custom', path: ['regions', index, 'sources', at], message: `"${source}" is not another configured region` });
        }
      }),
    );
    config.rules.forEach((rule, index) => {
      try {
        compileRule(rule, [...names]);
      } catch (error) {
        if (!(error instanceof RuleError)) throw error;
        ctx.addIssue({ code: 'custom', path: ['rules', index, ...error.field.split('.')], message: error.message });
      }
    });
    const tls = config.temporal.tls;
    if (tls !== undefined && (tls.certFile === undefined) !== (tls.keyFile === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['temporal', 'tls'], message: 'mutual TLS needs both certFile and keyFile' });
    }
  });

export type FerryConfigInput = z.input<typeof configSchema>;
type ParsedConfig = z.output<typeof configSchema>;

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface RegistryCredentials {
  username: string;
  password: string;
}

export type RegionConfig = Omit<ParsedConfig['regions'][number], 'sources' | 's3'> & {
  /** The regions whose pushes reach this one (regions[].sources, default every other). */
  sources: string[];
  /**
   * The region's bucket; null for a registry-API region (no s3 configured).
   * Its credentials are null in a process that does not touch this region's storage (regionsNeeded).
   */
  s3: (NonNullable<ParsedConfig['regions'][number]['s3']> & { credentials: S3Credentials | null }) | null;
  /** The pull check's login at the region's registry; null when it needs none, or this process does not check it. */
  registryCredentials: RegistryCredentials | null;
};

export interface ResolvedConfig extends Omit<ParsedConfig, 'regions' | 'auth' | 'temporal' | 'nats'> {
  regions: RegionConfig[];
  /** Every token the api accepts, the regions' ingest tokens included; none outside the api. */
  auth: { tokens: ApiToken[] };
  temporal: ParsedConfig['temporal'] & { apiKey?: string };
  nats: ParsedConfig['nats'] & { token?: string };
}

/**
 * Which Ferry process reads the configuration, so that it resolves only the
 * secrets it uses: the api its tokens and no storage or registry
 * credentials; a worker the storage credentials of the regions its queues
 * serve and of their sources (the control queue reads every region's), and
 * the registry logins of the regions its queues serve (pull checks, cache
 * purges); the CLI none of either; `all` everything (tests, the benchmark).
 */
export type ProcessRole = 'api' | 'worker' | 'cli' | 'all';

/**
 * The regions whose storage, and whose registry, a process uses. A
 * registry-API region has no storage: it is read and written through its
 * registry, so a worker serving a region whose source it is logs in there too.
 */
export function regionsNeeded(
  regions: Array<{ name: string; sources: string[]; s3?: unknown }>,
  role: ProcessRole,
  queues: string[] | undefined,
): { storage: Set<string>; registry: Set<string> } {
  const apiRegions = new Set(regions.filter((region) => region.s3 === undefined || region.s3 === null).map((region) => region.name));
  const split = (names: Iterable<string>, served: Set<string>) => {
    const used = [...names];
    return { storage: new Set(used.filter((name) => !apiRegions.has(name))), registry: new Set([...served, ...used.filter((name) => apiRegions.has(name))]) };
  };
  const every = regions.map((region) => region.name);
  if (role === 'all' || (role === 'worker' && queues === undefined)) return split(every, new Set(every));
  if (role !== 'worker') return { storage: new Set(), registry: new Set() };
  const served = new Set(queues!.filter((queue) => queue.startsWith(REGION_QUEUE_PREFIX)).map((queue) => queue.slice(REGION_QUEUE_PREFIX.length)));
  const control = queues!.some((queue) => !queue.startsWith(REGION_QUEUE_PREFIX));
  const used = control ? every : regions.filter((region) => served.has(region.name)).flatMap((region) => [region.name, ...region.sources]);
  return split(used, served);
}

/** Whether Ferry reaches the region only through its registry's API (no bucket configured). */
export function isRegistryApiRegion(region: Pick<RegionConfig, 's3'>): boolean {
  return region.s3 === null;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid Ferry configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.length === 0 ? '(root)' : issue.path.map(String).join('.');
  return `${path}: ${issue.message}`;
}

export interface ResolveOptions {
  readFile?: (path: string) => string;
  /** Default `all`. */
  role?: ProcessRole;
}

/** Validates an input object and resolves from `env` the secrets `role` uses. Throws ConfigError naming every bad field. */
export function resolveConfig(input: unknown, env: Record<string, string | undefined>, { readFile = (path) => readFileSync(path, 'utf8'), role = 'all' }: ResolveOptions = {}): ResolvedConfig {
  const parsed = configSchema.safeParse(input ?? {});
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map(describeIssue));
  const config = parsed.data;
  const problems: string[] = [];
  const secret = (path: string, name: string): string => {
    const value = env[name];
    if (value === undefined || value === '') problems.push(`${path}: environment variable ${name} is not set`);
    return value ?? '';
  };
  const sourced = config.regions.map(({ sources, ...region }) => ({
    ...region,
    sources: sources ?? config.regions.map((other) => other.name).filter((name) => name !== region.name),
  }));
  const needed = regionsNeeded(sourced, role, config.worker.queues);
  const regions = sourced.map(({ s3, ...region }, index) => ({
    ...region,
    s3:
      s3 === undefined
        ? null
        : {
            ...s3,
            credentials: !needed.storage.has(region.name)
              ? null
              : {
                  accessKeyId: secret(`regions.${index}.s3.accessKeyIdEnv`, s3.accessKeyIdEnv),
                  secretAccessKey: secret(`regions.${index}.s3.secretAccessKeyEnv`, s3.secretAccessKeyEnv),
                },
          },
    registryCredentials:
      region.registryAuth === undefined || !needed.registry.has(region.name)
        ? null
        : {
            username: secret(`regions.${index}.registryAuth.usernameEnv`, region.registryAuth.usernameEnv),
            password: secret(`regions.${index}.registryAuth.passwordEnv`, region.registryAuth.passwordEnv),
          },
  }));
  const tokens = role === 'api' || role === 'all' ? resolveTokens(config, secret, readFile, problems) : [];
  const temporal = { ...config.temporal, ...(config.temporal.apiKeyEnv === undefined ? {} : { apiKey: secret('temporal.apiKeyEnv', config.temporal.apiKeyEnv) }) };
  const nats = { ...config.nats, ...(config.nats.tokenEnv === undefined ? {} : { token: secret('nats.tokenEnv', config.nats.tokenEnv) }) };
  const postgresUrl = config.postgresPasswordEnv === undefined ? config.postgresUrl : withPassword(config.postgresUrl, secret('postgresPasswordEnv', config.postgresPasswordEnv), problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return { ...config, regions, auth: { tokens }, temporal, nats, postgresUrl };
}

/** postgresUrl with the password set: every pool and listener connects with it. */
function withPassword(postgresUrl: string, password: string, problems: string[]): string {
  try {
    const url = new URL(postgresUrl);
    url.password = encodeURIComponent(password);
    return url.toString();
  } catch {
    problems.push('postgresUrl: not a URL that can carry a password (postgresPasswordEnv)');
    return postgresUrl;
  }
}

/** A certificate in PEM, or undefined when none is named. */
function pem(path: string | undefined): Buffer | undefined {
  return path === undefined ? undefined : readFileSync(path);
}

/**
 * How every Ferry process (and the CLI) connects to Temporal: the address,
 * TLS with the configured CA and client pair, and the API key.
 */
export function temporalConnectOptions(config: Pick<ResolvedConfig, 'temporal'>): {
  address: string;
  tls?: { serverNameOverride?: string; serverRootCACertificate?: Buffer; clientCertPair?: { crt: Buffer; key: Buffer } };
  apiKey?: string;
} {
  const { address, tls, apiKey } = config.temporal;
  return {
    address,
    ...(tls === undefined
      ? {}
      : {
          tls: {
            ...(tls.serverName === undefined ? {} : { serverNameOverride: tls.serverName }),
            ...(tls.caFile === undefined ? {} : { serverRootCACertificate: pem(tls.caFile) }),
            ...(tls.certFile === undefined || tls.keyFile === undefined ? {} : { clientCertPair: { crt: pem(tls.certFile)!, key: pem(tls.keyFile)! } }),
          },
        }),
    ...(apiKey === undefined ? {} : { apiKey }),
  };
}

/** The api's tokens: each region's ingest token, the deprecated shared one, `auth.tokens` and `auth.tokensFile`, checked. */
function resolveTokens(config: ParsedConfig, secret: (path: string, name: string) => string, readFile: (path: string) => string, problems: string[]): ApiToken[] {
  const names = config.regions.map((region) => region.name);
  const scoped = (path: string, scopes: string[]) =>
    scopes.flatMap((text, index) => {
      try {
        return [parseScope(text, names)];
      } catch (error) {
        if (!(error instanceof ScopeError)) throw error;
        problems.push(`${path}.${index}: ${error.message}`);
        return [];
      }
    });
  const tokens: ApiToken[] = config.regions.flatMap((region, index) =>
    region.ingestTokenEnv === undefined
      ? []
      : [{ name: `ingest-${region.name}`, secret: secret(`regions.${index}.ingestTokenEnv`, region.ingestTokenEnv), scopes: [{ kind: 'ingest' as const, region: region.name }] }],
  );
  if (config.ingest.tokenEnv !== undefined) {
    tokens.push({ name: 'ingest-shared', secret: secret('ingest.tokenEnv', config.ingest.tokenEnv), scopes: names.map((region) => ({ kind: 'ingest' as const, region })) });
  }
  config.auth.tokens.forEach((token, index) => {
    tokens.push({ name: token.name, secret: secret(`auth.tokens.${index}.tokenEnv`, token.tokenEnv), scopes: scoped(`auth.tokens.${index}.scopes`, token.scopes) });
  });
  if (config.auth.tokensFile !== undefined) {
    const path = config.auth.tokensFile;
    try {
      const parsed = tokensFileSchema.safeParse(JSON.parse(readFile(path)));
      if (!parsed.success) problems.push(...parsed.error.issues.map((issue) => `auth.tokensFile ${path}: ${describeIssue(issue)}`));
      else parsed.data.forEach((token, index) => tokens.push({ name: token.name, secret: token.token, scopes: scoped(`auth.tokensFile ${path}: ${index}.scopes`, token.scopes) }));
    } catch (error) {
      problems.push(`auth.tokensFile ${path}: ${(error as Error).message}`);
    }
  }
  const seen = new Map<string, string>();
  const named = new Set<string>();
  for (const token of tokens) {
    if (named.has(token.name)) problems.push(`auth: two tokens are named "${token.name}"`);
    named.add(token.name);
    if (token.secret === '') continue;
    const other = seen.get(token.secret);
    // One secret with two sets of scopes would grant whichever was found first.
    if (other !== undefined) problems.push(`auth: tokens "${other}" and "${token.name}" have the same secret; give each its own`);
    seen.set(token.secret, token.name);
  }
  if (tokens.every((token) => token.scopes.every((scope) => scope.kind !== 'ingest'))) {
    problems.push(`auth: no token may send notifications; give each region an ingestTokenEnv (scopes: ${names.map((region) => formatScope({ kind: 'ingest', region })).join(', ')})`);
  }
  return tokens;
}

/**
 * Loads the configuration the way every Ferry process does: FERRY_CONFIG file
 * (optional) plus environment. FERRY_WORKER_QUEUES (comma-separated) sets
 * `worker.queues`, so the workers of one deployment can share one file, and
 * FERRY_WORKER_METRICS_PORTS ("port,runtimePort") `worker.metrics`, so
 * several workers can share one host.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env, role: ProcessRole = 'all'): ResolvedConfig {
  const file = env.FERRY_CONFIG;
  let input: Record<string, unknown> = {};
  if (file) {
    try {
      input = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new ConfigError([`FERRY_CONFIG=${file}: ${(error as Error).message}`]);
    }
  }
  const queues = env.FERRY_WORKER_QUEUES?.split(',').map((queue) => queue.trim());
  if (queues !== undefined) input = { ...input, worker: { ...(input.worker as object | undefined), queues } };
  const metricsPorts = env.FERRY_WORKER_METRICS_PORTS?.split(',').map((port) => Number(port.trim()));
  if (metricsPorts !== undefined) {
    if (metricsPorts.length !== 2) throw new ConfigError([`FERRY_WORKER_METRICS_PORTS=${env.FERRY_WORKER_METRICS_PORTS}: expected two ports, "port,runtimePort"`]);
    const worker = (input.worker ?? {}) as { metrics?: object };
    input = { ...input, worker: { ...worker, metrics: { ...worker.metrics, port: metricsPorts[0], runtimePort: metricsPorts[1] } } };
  }
  return resolveConfig(input, env, { role });
}

export function regionByName(config: ResolvedConfig, name: string): RegionConfig | undefined {
  return config.regions.find((region) => region.name === name);
}

/** Whether pushes to `source` replicate into `target` (regions[].sources). */
export function receivesFrom(config: Pick<ResolvedConfig, 'regions'>, target: string, source: string): boolean {
  return target !== source && (config.regions.find((region) => region.name === target)?.sources.includes(source) ?? false);
}

/** Whether a change of `repository` and `tag` from `source` replicates into `target`: its sources and the rules say so. */
export function replicatesInto(config: Pick<ResolvedConfig, 'regions' | 'rules'>, target: string, change: { sourceRegion: string; repository: string; tag: string | null }): boolean {
  const names = config.regions.map((region) => region.name);
  return receivesFrom(config, target, change.sourceRegion) && ruleAdmits(config.rules, names, change, target);
}

/** How a blob crosses from one region's storage into another's. */
export type CopyMethod = 'server-side' | 'streamed';
/** How a copy landed, as recorded: a copy method, or a registry-API region's mount from another of its repositories. */
export type CopiedBy = CopyMethod | 'mounted';

/** The one rule: inside the storage server when both regions share it, else streamed through the worker (always, to or from a registry-API region). */
export function copyMethod(source: RegionConfig, target: RegionConfig): CopyMethod {
  return sharesStorageEndpoint(source, target) ? 'server-side' : 'streamed';
}

/** Server-side copies (CopyObject, UploadPartCopy) work only when both buckets sit behind one endpoint with one set of credentials. */
export function sharesStorageEndpoint(a: RegionConfig, b: RegionConfig): boolean {
  return (
    a.s3 !== null &&
    b.s3 !== null &&
    a.s3.endpoint === b.s3.endpoint &&
    a.s3.credentials !== null &&
    b.s3.credentials !== null &&
    a.s3.credentials.accessKeyId === b.s3.credentials.accessKeyId &&
    a.s3.credentials.secretAccessKey === b.s3.credentials.secretAccessKey
  );
}
