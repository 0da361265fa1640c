// Bad input at the edges (issue 12): every route of the live api, as GET
// /v1/openapi.json lists them, driven with generated query strings, headers
// and bodies from a seeded stream (FERRY_FUZZ_SEED=<seed> replays a run).
// Whatever arrives, the api answers below 500, in its one error shape, and
// stays up; a refused notification records nothing; and no replication ever
// names a repository, tag or digest the parsers refuse, so nothing unvalidated
// reaches SQL, a storage key or a NATS subject.
import { randomInt } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { Agent, request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDigest, parseRepositoryName, parseTag } from '../../domain/reference';
import type { EventStore } from '../../store/event-store';
import { forEachLimited } from '../../support/concurrency';
import { SCOPED_PREFIX, SCOPED_TOKEN } from '../support/env';
import { bearer, connectStore, localConfig, storageRegions, tokenOf, uniqueRepository } from '../support/ferry';
import { hostileJson, hostileText, percentEncode, Random, randomDigest, randomNameComponent, randomTag, RAW_ESCAPES, wellFormed } from '../support/fuzz';
import { setPath } from '../support/notification-contract';

const config = localConfig();
const api = `http://${config.ingest.host}:${config.ingest.port}`;
const REGIONS = storageRegions(config).map((region) => region.name);
const MAX_BODY_BYTES = config.ingest.maxBodyBytes;
/** Generated requests across all routes, beside the refused batch and the accepted few. */
const RANDOM_CASES = 240;
const CONCURRENCY = 8;
/** Requests between two checks that the api is still up. */
const BATCH = 40;
/** How long a long poll may hold before the client hangs up; any other route must answer sooner. */
const HOLD_MS = 4_000;
const ANSWER_MS = 20_000;

const seed = fuzzSeed();
const root = new Random(seed);
/** Every repository this run names is under runBase: the refused batch's under refusedBase, the rest under fuzzBase. */
const runBase = uniqueRepository('fuzz');
const refusedBase = `${runBase}/refused`;
const fuzzBase = `${runBase}/edge`;
const runId = runBase.split('/')[0]!;
const INGEST_ROUTE = 'POST /v1/notifications/{format}/{region}';

function fuzzSeed(): number {
  const given = process.env.FERRY_FUZZ_SEED;
  if (given === undefined || given === '') return randomInt(2 ** 31);
  const parsed = Number(given);
  if (!Number.isSafeInteger(parsed) || parsed < 0) throw new Error(`FERRY_FUZZ_SEED must be a non-negative integer, got ${JSON.stringify(given)}`);
  return parsed;
}

// ---------------------------------------------------------------- requests and answers

/** What every answer is judged by, beyond "below 500, in the error shape". */
type Expectation =
  | { kind: 'ok' } // 200 whatever the query and headers: the public routes
  | { kind: 'any' }
  | { kind: 'refused'; codes?: readonly string[] } // a 4xx, with one of `codes` when given
  | { kind: 'inert' } // refused, or 202 accepting nothing: every event in it is unreadable or ignored
  | { kind: 'accepted'; events: number } // 202 accepting exactly that many events
  | { kind: 'edge' }; // a valid-looking event at the edge of the grammar: whatever is accepted is checked in the store

interface FuzzCase {
  method: string;
  path: string;
  headers: OutgoingHttpHeaders;
  body?: string;
  expect: Expectation;
  /** How the case was built, for the failure message (token names, not secrets). */
  note: string;
  /** A long poll may still be held when the client hangs up. */
  mayHold?: boolean;
  /** How long the answer may take (ANSWER_MS by default). */
  answerMs?: number;
  /** On a connection of its own: the server may answer it unread and close the connection. */
  fresh?: boolean;
}

interface Answer {
  status: number;
  text: string;
}

const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

/** Sends the request as generated (raw path, repeated headers); 'held' when a long poll outlasted HOLD_MS. */
function send(fuzz: FuzzCase): Promise<Answer | 'held'> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      {
        host: config.ingest.host,
        port: config.ingest.port,
        method: fuzz.method,
        path: fuzz.path,
        headers: fuzz.headers,
        agent: fuzz.fresh ? false : agent,
        signal: AbortSignal.timeout(fuzz.mayHold ? HOLD_MS : (fuzz.answerMs ?? ANSWER_MS)),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      },
    );
    request.on('error', (error) => (error.name === 'AbortError' && fuzz.mayHold ? resolve('held') : reject(error)));
    // Without a length a GET or DELETE body goes out unframed, and the server reads it as the next request.
    if (fuzz.body !== undefined) request.setHeader('content-length', Buffer.byteLength(fuzz.body));
    request.end(fuzz.body);
  });
}

function parseJson(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const excerpt = (text: string, length = 240) => (text.length > length ? `${JSON.stringify(text.slice(0, length))}… (${text.length} chars)` : JSON.stringify(text));

function describeCase(fuzz: FuzzCase): string {
  return `${fuzz.method} ${excerpt(fuzz.path, 200)} [${fuzz.note}]${fuzz.body === undefined ? '' : ` body ${excerpt(fuzz.body)}`}`;
}

/** What is wrong with `answer` to `fuzz`; the replications a 202 accepted are added to `accepted`. */
function judge(fuzz: FuzzCase, answer: Answer | 'held', accepted: number[]): string[] {
  if (answer === 'held') return fuzz.expect.kind === 'refused' ? [`held past ${HOLD_MS} ms instead of refused`] : [];
  const problems: string[] = [];
  const { status } = answer;
  const body = parseJson(answer.text);
  if (status >= 500) problems.push(`a ${status}`);
  if (status < 200 || status > 299) {
    const error = body?.error;
    if (typeof error?.code !== 'string' || !/^[A-Z_]+$/.test(error.code)) problems.push('no error code matching /^[A-Z_]+$/ in { error: { code, message } }');
    if (typeof error?.message !== 'string' || error.message.trim() === '') problems.push('no error message');
  } else if (fuzz.path !== '/metrics' && !fuzz.path.startsWith('/metrics?') && body === undefined) {
    problems.push('a 2xx that is not JSON');
  }
  const acceptedHere: unknown[] = status === 202 && Array.isArray(body?.accepted) ? body.accepted : [];
  for (const item of acceptedHere) accepted.push((item as { replicationId: number }).replicationId);
  const expectation = fuzz.expect;
  switch (expectation.kind) {
    case 'ok':
      if (status !== 200) problems.push('a public route did not answer 200');
      break;
    case 'refused':
      if (status < 400 || status > 499) problems.push('not refused with a 4xx');
      else if (expectation.codes !== undefined && !expectation.codes.includes(body?.error?.code)) problems.push(`refused with another code than ${expectation.codes.join(' or ')}`);
      break;
    case 'inert':
      if (!(status >= 400 && status <= 499) && !(status === 202 && acceptedHere.length === 0)) problems.push('neither refused nor a 202 accepting nothing');
      break;
    case 'accepted':
      if (status !== 202 || acceptedHere.length !== expectation.events) problems.push(`not a 202 accepting ${expectation.events} event(s)`);
      break;
  }
  return problems;
}

async function healthStatus(): Promise<number> {
  try {
    return (await fetch(`${api}/healthz`, { signal: AbortSignal.timeout(10_000) })).status;
  } catch {
    return 0;
  }
}

/**
 * Sends `cases`, CONCURRENCY at a time, checking after every BATCH that the
 * api still answers /healthz; returns every problem found and the
 * replications accepted on the way.
 */
async function fuzz(cases: FuzzCase[]): Promise<{ problems: string[]; accepted: number[] }> {
  const problems: string[] = [];
  const accepted: number[] = [];
  for (let start = 0; start < cases.length; start += BATCH) {
    await forEachLimited(cases.slice(start, start + BATCH), CONCURRENCY, async (fuzzCase) => {
      let answer: Answer | 'held';
      try {
        answer = await send(fuzzCase);
      } catch (error) {
        problems.push(`${describeCase(fuzzCase)}: no answer (${String(error)})`);
        return;
      }
      const found = judge(fuzzCase, answer, accepted);
      const answered = answer === 'held' ? 'no answer yet' : `answered ${answer.status} ${excerpt(answer.text)}`;
      if (found.length > 0) problems.push(`${describeCase(fuzzCase)}: ${found.join('; ')}; ${answered}`);
    });
    expect(await healthStatus(), `GET /healthz after requests ${start + 1}-${Math.min(start + BATCH, cases.length)} (seed ${seed})`).toBe(200);
  }
  return { problems, accepted };
}

// ---------------------------------------------------------------- the routes, from the document

interface Parameter {
  name: string;
  in: 'query' | 'path';
  required: boolean;
  description?: string;
  schema: { type?: string; enum?: string[]; minimum?: number; maximum?: number };
}

interface Route {
  /** `METHOD /path/{param}`, as the generators are keyed. */
  name: string;
  method: string;
  template: string;
  parameters: Parameter[];
}

async function documentedRoutes(): Promise<Route[]> {
  const response = await fetch(`${api}/v1/openapi.json`);
  expect(response.status).toBe(200);
  const document = (await response.json()) as { paths: Record<string, Record<string, { parameters?: Parameter[] }>> };
  return Object.entries(document.paths).flatMap(([template, operations]) =>
    Object.entries(operations).map(([method, operation]) => ({
      name: `${method.toUpperCase()} ${template}`,
      method: method.toUpperCase(),
      template,
      parameters: operation.parameters ?? [],
    })),
  );
}

/** The notification formats the ingest route's `format` parameter lists. */
function documentedFormats(route: Route): string[] {
  const description = route.parameters.find((parameter) => parameter.name === 'format')?.description ?? '';
  return (/: (.+)$/.exec(description)?.[1] ?? '').split(', ').filter(Boolean);
}

// ---------------------------------------------------------------- headers

const ALL_TOKENS = ['ingest-eastus', 'ingest-westeurope', 'ingest-southeastasia', 'reader', 'admin', SCOPED_TOKEN];

/**
 * The server refuses a request line and headers over 16 KiB before any route
 * (the last test): a generated request keeps well under, each header value
 * within HEADER_BUDGET and the query within QUERY_BUDGET.
 */
const HEADER_BUDGET = 1_000;
const QUERY_BUDGET = 6_000;

/** Header values keep to what HTTP carries (tab, printable ASCII and Latin-1), and to HEADER_BUDGET. */
const headerText = (text: string) => text.replace(/[^\t\x20-\x7e\x80-\xff]/g, '?').slice(0, HEADER_BUDGET);

/** An Authorization header: mostly the `rightful` token's; otherwise one the api refuses (`refused`) or another token. */
function authorization(random: Random, rightful: string | null): { headers: OutgoingHttpHeaders; refused: boolean; note: string } {
  if (rightful !== null && random.chance(0.75)) return { headers: bearer(config, rightful), refused: false, note: `token ${rightful}` };
  const secret = tokenOf(config, rightful ?? 'admin');
  const refusals: Array<[string, OutgoingHttpHeaders]> = [
    ['no token', {}],
    ['a wrong token', { authorization: `Bearer ${headerText(hostileText(random, 'wrong'))}x` }],
    ['an empty bearer', { authorization: random.pick(['Bearer', 'Bearer ', 'Bearer    ']) }],
    ['basic auth', { authorization: `Basic ${Buffer.from(`admin:${secret}`).toString('base64')}` }],
    ['a token and more', { authorization: `Bearer ${secret} ${headerText(hostileText(random))}x` }],
    ['a 4 KiB token', { authorization: `Bearer ${random.string('abcdef0123456789', 4096)}` }],
  ];
  const others: Array<[string, OutgoingHttpHeaders]> = [
    ['bearer in lower case', { authorization: `bearer ${secret}` }],
    ['another token', bearer(config, random.pick(ALL_TOKENS))],
    // Spelled so the type allows a list: the header goes out twice.
    ['two Authorization headers', { Authorization: [`Bearer ${secret}`, 'Bearer wrong'] }],
  ];
  if (random.chance(0.6)) {
    const [note, headers] = random.pick(refusals);
    return { headers, refused: true, note };
  }
  const [note, headers] = random.pick(others);
  return { headers, refused: false, note };
}

/** Headers no route reads, with hostile values. */
function noise(random: Random): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  if (random.chance(0.3)) headers['x-forwarded-for'] = headerText(hostileText(random, '10.0.0.1'));
  if (random.chance(0.3)) headers.accept = random.pick(['*/*', 'text/html', 'application/openmetrics-text; version=1.0.0', headerText(hostileText(random))]);
  if (random.chance(0.2)) headers['accept-encoding'] = random.pick(['gzip, br', 'identity;q=0', '*']);
  if (random.chance(0.1)) headers['content-encoding'] = 'gzip';
  if (random.chance(0.1)) headers['x-request-id'] = headerText(hostileText(random));
  return headers;
}

// ---------------------------------------------------------------- query strings

const PARSERS: Record<string, (value: unknown) => unknown> = { repository: parseRepositoryName, tag: parseTag, digest: parseDigest };

function refusedByParser(name: string, value: string): boolean {
  const parse = PARSERS[name];
  if (parse === undefined) return false;
  try {
    parse(value);
    return false;
  } catch {
    return true;
  }
}

/**
 * Whether the route's schema must refuse `value` for a parameter: not one of
 * its enum, or for a number, not one (in full), not finite, not whole for an
 * integer, or out of bounds.
 */
function refusedBySchema(schema: Parameter['schema'], value: string): boolean {
  if (schema.enum !== undefined) return !schema.enum.includes(value);
  if (schema.type !== 'integer' && schema.type !== 'number') return false;
  const number = Number(value);
  const fits = value !== '' && Number.isFinite(number) && (schema.type === 'number' || Number.isInteger(number));
  return !fits || number < (schema.minimum ?? -Infinity) || number > (schema.maximum ?? Infinity);
}

const EXTRA_KEYS = ['__proto__', 'constructor', 'hasOwnProperty', 'toString', 'tag[]', 'repository[0]', 'limit[a]', '', '%00', 'a.b', 'x'.repeat(300)];

/** A valid value for a parameter no generator knows, from its schema. */
function fromSchema(random: Random, schema: Parameter['schema']): string {
  if (schema.enum !== undefined) return random.pick(schema.enum);
  if (schema.type === 'integer' || schema.type === 'number') return String(random.int(schema.minimum ?? 0, Math.min(schema.maximum ?? 1000, 1000)));
  return randomNameComponent(random);
}

/** Each parameter's valid value; undefined where a valid request leaves it out. */
type Samples = Record<string, () => string | undefined>;

/**
 * A query string for the route's documented query parameters: each valid,
 * left out, hostile, given twice, or followed by raw percent sequences; and
 * sometimes keys the route does not know. `refused` when the api must refuse
 * it: a required parameter missing, a parameter given twice, a value its
 * schema refuses, or a repository, tag or digest its parser refuses.
 */
function queryString(random: Random, route: Route, samples: Samples): { query: string; refused: boolean } {
  const pairs: string[] = [];
  let refused = false;
  const pair = (name: string, value: string) => `${percentEncode(name)}=${percentEncode(value)}`;
  let spent = 0;
  // Hostile text within what is left of QUERY_BUDGET (it can come out empty, which always fits).
  const hostile = (stem?: string): string => {
    for (;;) {
      const value = hostileText(random, stem);
      const length = percentEncode(value).length;
      if (spent + length <= QUERY_BUDGET) {
        spent += length;
        return value;
      }
    }
  };
  for (const parameter of route.parameters.filter((candidate) => candidate.in === 'query')) {
    const { name } = parameter;
    const valid = name in samples ? samples[name]!() : fromSchema(random, parameter.schema);
    const roll = random.next();
    if (roll < 0.6) {
      if (valid !== undefined) pairs.push(pair(name, valid));
      else if (parameter.required) refused = true;
    } else if (roll < 0.7) {
      if (parameter.required) refused = true;
    } else if (roll < 0.9) {
      const value = hostile(valid);
      pairs.push(pair(name, value));
      if (refusedByParser(name, value) || refusedBySchema(parameter.schema, value)) refused = true;
    } else if (roll < 0.95) {
      pairs.push(pair(name, valid ?? 'x'), pair(name, random.chance(0.5) ? (valid ?? 'x') : hostile(valid)));
      refused = true;
    } else {
      pairs.push(`${percentEncode(name)}=${percentEncode(valid ?? '')}${random.pick(RAW_ESCAPES)}`);
    }
  }
  if (random.chance(0.25)) {
    for (let extra = random.int(1, 3); extra > 0; extra--) pairs.push(pair(random.pick(EXTRA_KEYS), hostile()));
  }
  const separator = random.chance(0.9) ? '&' : random.pick(['&&', '&;&']);
  const query = pairs.join(separator);
  return { query: query === '' ? (random.chance(0.2) ? '?' : '') : `?${query}`, refused };
}

/** A value `make` makes that is none of `known` (hostile text around a stem can come out as the stem). */
function unlike(known: readonly string[], make: () => string): string {
  for (;;) {
    const value = make();
    if (!known.includes(value)) return value;
  }
}

/** The router refuses a longer path parameter itself, before any route (the last test). */
const MAX_PARAMETER_LENGTH = 100;

/**
 * A path parameter percent-encoded, dots too, so `..` stays inside the
 * parameter; never empty (that is another route) nor longer than the router takes.
 */
function pathParameter(value: string): string {
  const encode = (text: string) => percentEncode(text).replace(/\./g, '%2E');
  // An unpaired surrogate has no UTF-8 form: the router refuses its bytes before any route (the last test).
  let characters = [...wellFormed(value)];
  while (encode(characters.join('')).length > MAX_PARAMETER_LENGTH) characters = characters.slice(0, -1);
  return characters.length === 0 ? '%20' : encode(characters.join(''));
}

// ---------------------------------------------------------------- notification bodies

type Format = 'distribution' | 'harbor' | 'acr';
type Json = any;

function fixtures(folder: string): Map<string, Json> {
  const directory = new URL(`../fixtures/${folder}/`, import.meta.url);
  return new Map(readdirSync(directory).filter((name) => name.endsWith('.json')).map((name) => [name, JSON.parse(readFileSync(new URL(name, directory), 'utf8'))]));
}

const DISTRIBUTION = fixtures('distribution-2.8/notifications');
const HARBOR = fixtures('harbor');
const ACR = fixtures('acr');
/** Each format's example bodies; a Distribution example is one event of an envelope. */
const EXAMPLES: Record<Format, Json[]> = {
  distribution: [...DISTRIBUTION.values()].map((envelope) => envelope.events[0]),
  harbor: [...HARBOR.values()],
  acr: [...ACR.values()],
};

const copy = (name: string, from: Map<string, Json>): Json => structuredClone(from.get(name));

/** Fields (of one event) each format's parser reads, and a few it does not. */
const FIELDS: Record<Format, readonly string[]> = {
  distribution: ['id', 'timestamp', 'action', 'target', 'target.mediaType', 'target.size', 'target.digest', 'target.repository', 'target.tag', 'target.length', 'target.references', 'request', 'request.useragent', 'actor', 'source.addr', 'extra'],
  harbor: [
    'type',
    'occur_at',
    'specversion',
    'time',
    'operator',
    ...['event_data', 'data'].flatMap((container) => [
      container,
      `${container}.resources`,
      `${container}.resources.0`,
      `${container}.resources.0.digest`,
      `${container}.resources.0.tag`,
      `${container}.resources.1`,
      `${container}.repository`,
      `${container}.repository.repo_full_name`,
      `${container}.repository.name`,
    ]),
  ],
  acr: ['id', 'timestamp', 'action', 'target', 'target.mediaType', 'target.size', 'target.digest', 'target.repository', 'target.tag', 'target.length', 'request', 'request.useragent', 'extra'],
};

/** Where a body names its repository or digests: in every event, in both of Harbor's shapes. */
function referencePaths(format: Format, body: Json, field: 'repository' | 'digest'): string[] {
  switch (format) {
    case 'distribution':
      return Array.isArray(body?.events) ? body.events.map((_event: unknown, index: number) => `events.${index}.target.${field}`) : [];
    case 'acr':
      return [`target.${field}`];
    case 'harbor':
      return ['event_data', 'data'].flatMap((container) => {
        if (field === 'repository') return [`${container}.repository.repo_full_name`];
        const resources = body?.[container]?.resources;
        return Array.isArray(resources) ? resources.map((_resource: unknown, index: number) => `${container}.resources.${index}.${field}`) : [];
      });
  }
}

/** A body of the format with every reference renamed under `base`, built from the format's examples. */
function exampleBody(random: Random, format: Format, base: string): Json {
  const body = format === 'distribution' ? { events: Array.from({ length: random.int(1, 3) }, () => structuredClone(random.pick(EXAMPLES.distribution))) } : structuredClone(random.pick(EXAMPLES[format]));
  for (const path of referencePaths(format, body, 'repository')) setPath(body, path, `${base}/${randomNameComponent(random)}`);
  for (const path of referencePaths(format, body, 'digest')) setPath(body, path, randomDigest(random));
  if (format === 'distribution') body.events.forEach((event: Json) => (event.id = eventId(random)));
  if (format === 'acr') body.id = eventId(random);
  return body;
}

/** A value `parse` refuses: hostile text around `stem`, a number, null, an array or an object. */
function refusedValue(random: Random, parse: (value: unknown) => unknown, stem: string): unknown {
  for (let attempt = 0; attempt < 50; attempt++) {
    const value = hostileJson(random, stem);
    // An empty digest reads as "not set": a delete naming a tag would then be a valid tag delete.
    if (value === '') continue;
    try {
      parse(value);
    } catch {
      return value;
    }
  }
  return `${stem}/../`;
}

/**
 * A body no event of which can be accepted: some fields replaced by hostile
 * values, then every repository (or every digest) replaced by one its parser
 * refuses. Replacing a field never brings a refused reference back.
 */
function poisonedBody(random: Random, format: Format, base: string): Json {
  const body = exampleBody(random, format, base);
  const events = format === 'distribution' ? body.events.length : 1;
  for (let mutations = random.int(0, 3); mutations > 0; mutations--) {
    const path = `${format === 'distribution' ? `events.${random.int(0, events - 1)}.` : ''}${random.pick(FIELDS[format])}`;
    setPath(body, path, random.chance(0.2) ? undefined : hostileJson(random, `${base}/${randomNameComponent(random)}`));
  }
  const field = random.pick(['repository', 'digest'] as const);
  const value = field === 'repository' ? refusedValue(random, parseRepositoryName, `${base}/${randomNameComponent(random)}`) : refusedValue(random, parseDigest, randomDigest(random));
  for (const path of referencePaths(format, body, field)) setPath(body, path, value);
  return body;
}

/** An event id as registries send them (a UUID), unique to this run. */
function eventId(random: Random): string {
  const hex = random.string('0123456789abcdef', 32);
  return `${runId}-${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Text that is JSON only in part, or no envelope at all, or too deep, or too large. */
function oddBody(random: Random, format: Format, body: Json): { text: string; refused?: readonly string[] } {
  const text = JSON.stringify(body);
  const depth = random.pick([500, 5_000, 40_000]);
  const deep = `${'['.repeat(depth)}${']'.repeat(depth)}`;
  const odd: Array<() => { text: string; refused?: readonly string[] }> = [
    () => ({ text: text.slice(0, random.int(0, text.length - 1)), refused: ['MALFORMED_ENVELOPE'] }),
    () => ({ text: hostileText(random) }),
    () => ({ text: `[${text}]`, refused: ['MALFORMED_ENVELOPE'] }),
    () => ({ text: random.pick(['null', '1', '"events"', 'true', '[]']), refused: ['MALFORMED_ENVELOPE'] }),
    () => ({ text: `\ufeff${text}` }),
    () => ({ text: format === 'distribution' ? `{"events":[${deep}]}` : `{"action":${deep},"type":${deep},"target":${deep}}` }),
    () => ({ text: format === 'distribution' ? `{"events":[${deep}],"events":{}}` : `${text.slice(0, -1)},"target":7,"event_data":7,"data":7}` }),
    () => ({ text: `${text.slice(0, -1)},"padding":"${random.string('abcdefghij', MAX_BODY_BYTES - text.length + random.int(1, 64 * 1024))}"}`, refused: ['BODY_TOO_LARGE'] }),
  ];
  return random.pick(odd)();
}

const NOTIFICATION_TYPES = ['application/json', 'application/vnd.docker.distribution.events.v1+json', 'application/vnd.docker.distribution.events.v2+json', 'application/cloudevents+json'];
const UNSUPPORTED_TYPES = ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/vnd.docker.distribution.events.v3+json', 'text/json', 'application/jsonx'];

/**
 * A content type: mostly one the api reads (`read`), with a parameter; else
 * one it refuses (`refused`), or a hostile one that may go either way.
 */
function contentType(random: Random): { headers: OutgoingHttpHeaders; read: boolean; refused: boolean; note: string } {
  const roll = random.next();
  if (roll < 0.85) {
    const type = random.pick(NOTIFICATION_TYPES);
    const value = random.pick([type, `${type}; charset=utf-8`, `${type};charset=UTF-8`]);
    return { headers: { 'content-type': value }, read: true, refused: false, note: value };
  }
  if (roll < 0.95) {
    const value = random.pick(UNSUPPORTED_TYPES);
    return { headers: { 'content-type': value }, read: false, refused: true, note: value };
  }
  const value = random.pick(['', ' application/json ', 'APPLICATION/JSON', 'application/json; charset=utf-16', '*/*', 'application/*', headerText(hostileText(random, 'application/json'))]);
  return { headers: { 'content-type': value }, read: false, refused: false, note: `content-type ${JSON.stringify(value)}` };
}

// ---------------------------------------------------------------- the generators, one per documented route

type Generator = (random: Random, route: Route) => FuzzCase;

/** A notification no event of which can be accepted, to a URL, with a token and a content type, each mostly right. */
const ingestCase: Generator = (random, route) => {
  const formats = documentedFormats(route) as Format[];
  const format = random.chance(0.9) ? random.pick(formats) : unlike(formats, () => hostileText(random, 'distribution'));
  const region = random.chance(0.9) ? random.pick(REGIONS) : unlike(REGIONS, () => hostileText(random, 'eastus'));
  const bodyFormat = formats.includes(format as Format) ? (format as Format) : random.pick(formats);
  const body = poisonedBody(random, bodyFormat, fuzzBase);
  const { text, refused: bodyRefused } = random.chance(0.25) ? oddBody(random, bodyFormat, body) : { text: JSON.stringify(body), refused: undefined };
  const auth = authorization(random, REGIONS.includes(region) ? `ingest-${region}` : 'ingest-eastus');
  const type = contentType(random);
  const path = `/v1/notifications/${pathParameter(format)}/${pathParameter(region)}`;
  // Only a body refused for what it is, with everything else right, says which code.
  const allElseRight = !auth.refused && type.read && formats.includes(format as Format) && REGIONS.includes(region) && auth.note === `token ingest-${region}`;
  const expectation: Expectation = auth.refused || type.refused ? { kind: 'refused' } : bodyRefused !== undefined ? { kind: 'refused', ...(allElseRight ? { codes: bodyRefused } : {}) } : { kind: 'inert' };
  return { method: 'POST', path, headers: { ...noise(random), ...auth.headers, ...type.headers }, body: text, expect: expectation, note: `${auth.note}, ${type.note}` };
};

const READ_TOKENS = ['admin', 'reader', SCOPED_TOKEN];

/** A GET route: its valid query values, the tokens that may call it, its path when it has a parameter. */
interface GetRoute {
  samples: (random: Random) => Samples;
  rightful: readonly string[];
  path?: (random: Random, route: Route) => string;
  /** A long poll: it may hold past HOLD_MS. */
  mayHold?: boolean;
}

/** A GET route's request: its query from the route's samples, mostly with one of its tokens. */
function readCase(random: Random, route: Route, spec: GetRoute): FuzzCase {
  const { query, refused } = queryString(random, route, spec.samples(random));
  const auth = authorization(random, random.pick(spec.rightful));
  const headers = { ...noise(random), ...auth.headers };
  let body: string | undefined;
  if (random.chance(0.1)) {
    headers['content-type'] = random.pick([...NOTIFICATION_TYPES, ...UNSUPPORTED_TYPES]);
    body = random.pick(['{', JSON.stringify(hostileJson(random)), hostileText(random) || '-']);
  }
  const path = spec.path?.(random, route) ?? route.template;
  return { method: route.method, path: `${path}${query}`, headers, body, expect: refused || auth.refused ? { kind: 'refused' } : { kind: 'any' }, note: auth.note, mayHold: spec.mayHold };
}

/** A repository (under the run's base, the scoped team's prefix or elsewhere) and exactly one of tag and digest. */
function referenceSamples(random: Random): Samples {
  const byTag = random.chance(0.6);
  return {
    repository: () => random.pick([`${fuzzBase}/${randomNameComponent(random)}`, `${SCOPED_PREFIX}/${randomNameComponent(random)}`, 'demo/app']),
    tag: () => (byTag ? randomTag(random) : undefined),
    digest: () => (byTag ? undefined : randomDigest(random)),
  };
}

const GET_ROUTES: Record<string, GetRoute> = {
  'GET /v1/status': { samples: referenceSamples, rightful: READ_TOKENS },
  'GET /v1/replications': {
    samples: (random) => ({
      repository: () => (random.chance(0.5) ? undefined : `${fuzzBase}/${randomNameComponent(random)}`),
      region: () => (random.chance(0.5) ? undefined : random.pick(REGIONS)),
      before: () => (random.chance(0.5) ? undefined : String(random.int(1, 10_000))),
    }),
    rightful: READ_TOKENS,
  },
  'GET /v1/replications/{id}/events': {
    samples: () => ({}),
    rightful: READ_TOKENS,
    path: (random, route) => {
      const id = random.chance(0.4) ? String(random.int(1, 2_000)) : random.pick([hostileText(random, '1'), random.pick(['0', '-1', '1.5', '1e3', '0x10', '9007199254740993', '99999999999999999999', '1e21', ' 1', '١'])]);
      return route.template.replace('{id}', pathParameter(id));
    },
  },
  'GET /v1/wait': {
    samples: (random) => ({
      ...referenceSamples(random),
      regions: () => random.sample(REGIONS, random.int(1, REGIONS.length)).join(random.pick([',', ',,'])),
      timeout: () => random.pick(['0', '0.2', '1']),
      after: () => (random.chance(0.7) ? undefined : random.string('0123456789abcdef', 16)),
    }),
    rightful: READ_TOKENS,
    mayHold: true,
  },
  'GET /metrics': { samples: () => ({}), rightful: ['admin'] },
  'GET /v1/admin/stuck': {
    samples: (random) => ({ olderThan: () => random.pick(['90s', '10m', '1h30m', '2d', `${random.pick(['99999999999999999999', '9007199254740993', '100000000'])}d`]) }),
    rightful: ['admin'],
  },
  'GET /v1/admin/runs': {
    samples: (random) => ({
      workflowId: () => random.pick([`reconcile (manual) ${new Date().toISOString()}`, `backfill ${fuzzBase}/x ${new Date().toISOString()}`, eventId(random)]),
      wait: () => random.pick(['0', '1']),
    }),
    rightful: ['admin'],
    mayHold: true,
  },
};

const GENERATORS: Record<string, Generator> = {
  [INGEST_ROUTE]: ingestCase,
  ...Object.fromEntries(Object.entries(GET_ROUTES).map(([name, spec]): [string, Generator] => [name, (random, route) => readCase(random, route, spec)])),
  'GET /healthz': publicCase,
  'GET /v1/openapi.json': publicCase,
  'POST /v1/admin/reconcile': (random, route) => adminCase(random, route, refusedReconcile(random)),
  'POST /v1/admin/backfill': (random, route) => adminCase(random, route, refusedBackfill(random)),
};

/** Values each parameter of each GET route gets once, the others valid: what reaches SQL or Temporal unchecked answers 5xx. */
const SWEEP_VALUES: ReadonlyArray<(random: Random) => string> = [
  () => 'a\u0000b',
  () => 'a\ud800',
  () => "' OR 1=1 --",
  () => '%_\\',
  () => '../../etc/passwd',
  () => 'ferry.replicated.>',
  () => '😀',
  () => '-1',
  () => '99999999999999999999',
  () => '1e21',
  () => 'Infinity',
  () => '1e309',
  (random) => random.string('abcdefghijklmnopqrstuvwxyz0123456789', 4000),
];

/** Every parameter of every GET route, once with each SWEEP_VALUES value, with a token that may call it. */
function sweepCases(random: Random, routes: readonly Route[]): FuzzCase[] {
  return routes.flatMap((route) => {
    const spec = GET_ROUTES[route.name];
    if (spec === undefined) return [];
    return route.parameters.flatMap((parameter) =>
      SWEEP_VALUES.map((make): FuzzCase => {
        const value = make(random);
        const samples = spec.samples(random);
        const query = route.parameters
          .filter((other) => other.in === 'query')
          .flatMap((other) => {
            const given = other.name === parameter.name ? value : samples[other.name]?.();
            return given === undefined ? [] : [`${percentEncode(other.name)}=${percentEncode(given)}`];
          })
          .join('&');
        const path = parameter.in === 'path' ? route.template.replace(`{${parameter.name}}`, pathParameter(value)) : (spec.path?.(random, route) ?? route.template);
        const name = spec.rightful[0]!;
        return {
          method: route.method,
          path: query === '' ? path : `${path}?${query}`,
          headers: bearer(config, name),
          expect: refusedByParser(parameter.name, value) || refusedBySchema(parameter.schema, value) ? { kind: 'refused' } : { kind: 'any' },
          note: `token ${name}, ${parameter.name} swept`,
          mayHold: spec.mayHold,
        };
      }),
    );
  });
}

/**
 * An admin POST with a body the route must refuse, so nothing starts: with
 * an admin token mostly, as JSON mostly. Never an absent body, null or {}:
 * that scope is every repository.
 */
function adminCase(random: Random, route: Route, body: unknown): FuzzCase {
  const auth = authorization(random, 'admin');
  const text = JSON.stringify(body);
  const odd = random.chance(0.2);
  const sent = odd ? random.pick([text.slice(0, random.int(1, text.length - 1)), `[${text}]`, `"${random.string('abc', 8)}"`, notAnObject(random)]) : text;
  const type = random.chance(0.85) ? 'application/json' : random.pick([...UNSUPPORTED_TYPES, ...NOTIFICATION_TYPES]);
  return { method: route.method, path: `${route.template}${queryString(random, route, {}).query}`, headers: { ...noise(random), ...auth.headers, 'content-type': type }, body: sent, expect: { kind: 'refused' }, note: `${auth.note}, ${type}` };
}

/** Hostile text that is not empty, and not JSON for null or an object: an admin body of those names every repository. */
function notAnObject(random: Random): string {
  for (;;) {
    const text = hostileText(random);
    if (text.trim() === '') continue;
    try {
      const value: unknown = JSON.parse(text);
      if (value === null || (typeof value === 'object' && !Array.isArray(value))) continue;
    } catch {
      // Not JSON at all: refused as such.
    }
    return text;
  }
}

/** A field name no admin body has. */
const unknownField = (random: Random, known: readonly string[]) => unlike(known, () => hostileText(random, 'repository'));

/** A reconcile scope refused for one reason: an unknown field, no list, or a name its parser refuses. */
function refusedReconcile(random: Random): unknown {
  const names = () => Array.from({ length: random.int(1, 3) }, () => `${fuzzBase}/${randomNameComponent(random)}`);
  return random.pick<() => unknown>([
    () => ({ repositories: names(), [unknownField(random, ['repositories'])]: hostileJson(random) }),
    () => ({ repositories: random.pick<unknown>([[], {}, 'a/b', 1, true, [1], [null], [names()]]) }),
    () => ({ repositories: [...names(), refusedValue(random, parseRepositoryName, `${fuzzBase}/x`)] }),
    () => random.pick<unknown>([[], ['a/b'], 1, 'all', true, false]),
  ])();
}

/** A backfill scope refused for one reason: an unknown field, all not true, both or neither of all and repositories, a bad name or region. */
function refusedBackfill(random: Random): unknown {
  const names = () => Array.from({ length: random.int(1, 3) }, () => `${fuzzBase}/${randomNameComponent(random)}`);
  const to = () => (random.chance(0.5) ? {} : { to: random.sample(REGIONS, random.int(1, REGIONS.length)) });
  return random.pick<() => unknown>([
    () => ({ repositories: names(), ...to(), [unknownField(random, ['repositories', 'all', 'to'])]: hostileJson(random) }),
    () => ({ all: random.pick<unknown>([false, 'true', 1, null, [true], {}]), ...to() }),
    () => ({ all: true, repositories: names(), ...to() }),
    () => ({ ...to(), ...(random.chance(0.5) ? { all: undefined } : {}) }),
    () => ({ repositories: [...names(), refusedValue(random, parseRepositoryName, `${fuzzBase}/x`)], ...to() }),
    () => ({ repositories: names(), to: [unlike(REGIONS, () => hostileText(random, random.pick(REGIONS)))] }),
    () => ({ repositories: names(), to: random.pick<unknown>([[], 'eastus', [1], [REGIONS]]) }),
  ])();
}

/** A public route answers 200 whatever query and Authorization come with it. */
function publicCase(random: Random, route: Route): FuzzCase {
  const auth = authorization(random, null);
  return { method: route.method, path: `${route.template}${queryString(random, route, {}).query}`, headers: { ...noise(random), ...auth.headers }, expect: { kind: 'ok' }, note: auth.note };
}

// ---------------------------------------------------------------- notifications the api accepts

/** A time registries write: now, in one of RFC 3339's spellings. */
function now(random: Random): string {
  const time = new Date(Date.now() - random.int(0, 3_600_000)).toISOString();
  return random.pick([time, time.replace('Z', '+00:00'), time.replace(/\.\d+Z$/, '.123456789Z'), time.replace(/\.\d+Z$/, 'Z')]);
}

/** Text valid as an event id that is hostile anywhere else: SQL, subject tokens, unicode. */
function hostileId(random: Random): string {
  return `${eventId(random)}${random.pick(["'; DROP TABLE events; --", '%_\\', 'ferry.replicated.>', ' * ', '😀 é ‮', '../../'])}`;
}

/** Ids no Postgres text column or index holds as they are: NUL, an unpaired surrogate, 4000 characters. */
const UNSTORABLE_IDS: ReadonlyArray<(random: Random) => string> = [(random) => `${eventId(random)}\u0000`, (random) => `${eventId(random)}\ud800`, (random) => random.string('abcdefghijklmnopqrstuvwxyz0123456789', 4000)];

/** Times the RFC 3339 pattern admits that no calendar or store holds: Feb 30, year 0, an offset beyond ±15:59. */
const IMPOSSIBLE_TIMES = ['2026-02-30T10:00:00Z', '2025-04-31T23:59:59.5Z', '0000-01-01T00:00:00Z', '2026-01-01T00:00:00+16:00', '2026-01-01T00:00:00-23:59'];

function repositoryOf(random: Random, base: string): string {
  return `${base}/${randomNameComponent(random)}`;
}

/** A Distribution envelope of one push (tagged) under `base`. */
function distributionPush(random: Random, base: string, id = hostileId(random), timestamp = now(random)): Json {
  const event = copy('0003.json', DISTRIBUTION).events[0];
  Object.assign(event, { id, timestamp });
  Object.assign(event.target, { repository: repositoryOf(random, base), digest: randomDigest(random), tag: randomTag(random), size: random.int(0, 2 ** 31), mediaType: random.pick(['application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v2+json']) });
  // What no parser reads may hold anything.
  event.request.useragent = hostileText(random);
  event.actor = { name: hostileText(random) };
  return { events: [event] };
}

function acrEvent(random: Random, base: string, name: 'push.json' | 'delete.json', id = hostileId(random), timestamp = now(random)): Json {
  const body = copy(name, ACR);
  Object.assign(body, { id, timestamp });
  Object.assign(body.target, { repository: repositoryOf(random, base), digest: randomDigest(random) });
  if (name === 'push.json') body.target.tag = randomTag(random);
  return body;
}

function harborEvent(random: Random, base: string, name: 'push-tag.json' | 'cloudevents-push.json' | 'delete.json'): Json {
  const body = copy(name, HARBOR);
  const container = name.startsWith('cloudevents') ? body.data : body.event_data;
  const seconds = Math.floor(Date.now() / 1000) - random.int(0, 3_600);
  if (name.startsWith('cloudevents')) body.time = new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
  else body.occur_at = seconds;
  container.repository.repo_full_name = repositoryOf(random, base);
  Object.assign(container.resources[0], { digest: randomDigest(random), tag: randomTag(random) });
  return body;
}

/**
 * The few notifications the api accepts: one of each kind and format, with
 * ids and unread fields full of hostile text; each starts a replication of
 * a digest no region holds. Then edge cases the grammar admits but no store
 * can hold (impossible times, ids with NUL or unpaired surrogates, a 4000
 * character id), which must not cost a 5xx; and a reconcile and a backfill
 * that find nothing to do.
 */
function acceptedCases(random: Random): FuzzCase[] {
  const post = (format: Format, body: Json, expectation: Expectation, note: string): FuzzCase => {
    const region = random.pick(REGIONS);
    return {
      method: 'POST',
      path: `/v1/notifications/${format}/${region}`,
      headers: { ...bearer(config, `ingest-${region}`), 'content-type': random.pick(NOTIFICATION_TYPES) },
      body: JSON.stringify(body),
      expect: expectation,
      note,
    };
  };
  const deleteTag = copy('0033.json', DISTRIBUTION);
  Object.assign(deleteTag.events[0], { id: hostileId(random), timestamp: now(random) });
  Object.assign(deleteTag.events[0].target, { repository: repositoryOf(random, fuzzBase), tag: randomTag(random) });
  const mixed = distributionPush(random, fuzzBase);
  mixed.events.push(unreadableEvent(random));
  const one: Expectation = { kind: 'accepted', events: 1 };
  return [
    post('distribution', distributionPush(random, fuzzBase), one, 'a push'),
    post('distribution', deleteTag, one, 'a tag delete'),
    post('distribution', mixed, one, 'a push beside an unreadable event'),
    post('harbor', harborEvent(random, fuzzBase, 'push-tag.json'), one, 'a push'),
    post('harbor', harborEvent(random, fuzzBase, 'cloudevents-push.json'), one, 'a CloudEvents push'),
    post('harbor', harborEvent(random, fuzzBase, 'delete.json'), one, 'a delete'),
    post('acr', acrEvent(random, fuzzBase, 'push.json'), one, 'a push'),
    post('acr', acrEvent(random, fuzzBase, 'delete.json'), one, 'a delete'),
    post('distribution', distributionPush(random, fuzzBase, hostileId(random), random.pick(IMPOSSIBLE_TIMES)), { kind: 'edge' }, 'a tagged push at an impossible time'),
    post('acr', acrEvent(random, fuzzBase, 'delete.json', hostileId(random), random.pick(IMPOSSIBLE_TIMES)), { kind: 'edge' }, 'a delete at an impossible time'),
    post('distribution', distributionPush(random, fuzzBase, random.pick(UNSTORABLE_IDS)(random)), { kind: 'edge' }, 'a push whose id no text column holds'),
    ...adminRuns(random),
  ];
}

/**
 * A Distribution event that cannot be read, with no `__proto__` or
 * `constructor` key: as application/json, the api refuses a body holding one
 * whole (Fastify's guard against prototype poisoning).
 */
function unreadableEvent(random: Random): Json {
  for (;;) {
    const event = poisonedBody(random, 'distribution', fuzzBase).events[0];
    if (!/"(__proto__|constructor)"/.test(JSON.stringify(event))) return event;
  }
}

/** A reconcile and a backfill of repositories no region holds: each starts a run that finds nothing to do. */
function adminRuns(random: Random): FuzzCase[] {
  const headers = { ...bearer(config, 'admin'), 'content-type': 'application/json' };
  const repositories = [`${fuzzBase}/${randomNameComponent(random)}`];
  return [
    { method: 'POST', path: '/v1/admin/reconcile', headers, body: JSON.stringify({ repositories }), expect: { kind: 'any' }, note: 'a reconcile of one repository', answerMs: 45_000 },
    { method: 'POST', path: '/v1/admin/backfill', headers, body: JSON.stringify({ repositories, to: random.sample(REGIONS, 1) }), expect: { kind: 'any' }, note: 'a backfill of one repository' },
  ];
}

// ---------------------------------------------------------------- notifications refused whole

/**
 * Notifications of a valid push or delete under `refusedBase` that the api
 * must refuse before recording anything, each for one reason, with its code.
 */
function refusedCases(random: Random, formats: readonly Format[]): FuzzCase[] {
  const cases: FuzzCase[] = [];
  for (const format of formats) {
    const valid = (): Json => {
      switch (format) {
        case 'distribution':
          return { events: Array.from({ length: random.int(1, 3) }, () => distributionPush(random, refusedBase).events[0]) };
        case 'harbor':
          return harborEvent(random, refusedBase, random.pick(['push-tag.json', 'cloudevents-push.json', 'delete.json'] as const));
        case 'acr':
          return acrEvent(random, refusedBase, random.pick(['push.json', 'delete.json'] as const));
      }
    };
    const region = random.pick(REGIONS);
    const otherRegion = random.pick(REGIONS.filter((name) => name !== region));
    const json = { 'content-type': random.pick(NOTIFICATION_TYPES) };
    const rightful = bearer(config, `ingest-${region}`);
    const to = (path: string, headers: OutgoingHttpHeaders, body: string, codes: readonly string[], note: string) => cases.push({ method: 'POST', path, headers, body, expect: { kind: 'refused', codes }, note: `${format}: ${note}` });
    const url = `/v1/notifications/${format}/${region}`;
    to(url, json, JSON.stringify(valid()), ['UNAUTHORIZED'], 'no token');
    to(url, { ...json, authorization: `Bearer ${headerText(hostileText(random, 'guess'))}x` }, JSON.stringify(valid()), ['UNAUTHORIZED'], 'a wrong token');
    to(url, { ...json, ...bearer(config, `ingest-${otherRegion}`) }, JSON.stringify(valid()), ['FORBIDDEN'], `the token of ${otherRegion}`);
    for (const name of ['reader', 'admin', SCOPED_TOKEN]) to(url, { ...json, ...bearer(config, name) }, JSON.stringify(valid()), ['FORBIDDEN'], `token ${name}`);
    to(url, { ...rightful, 'content-type': random.pick(UNSUPPORTED_TYPES) }, JSON.stringify(valid()), ['UNSUPPORTED_MEDIA_TYPE'], 'an unsupported content type');
    to(url, rightful, JSON.stringify(valid()), ['UNSUPPORTED_MEDIA_TYPE'], 'no content type');
    to(`/v1/notifications/${format}/${pathParameter(unlike(REGIONS, () => hostileText(random, region)))}`, { ...json, ...rightful }, JSON.stringify(valid()), ['UNKNOWN_REGION'], 'an unknown region');
    to(`/v1/notifications/${pathParameter(unlike(formats, () => hostileText(random, format)))}/${region}`, { ...json, ...rightful }, JSON.stringify(valid()), ['UNKNOWN_FORMAT'], 'an unknown format');
    const text = JSON.stringify(valid());
    to(url, { ...json, ...rightful }, `${text.slice(0, -1)},"padding":"${'p'.repeat(MAX_BODY_BYTES - text.length + random.int(1, 4096))}"}`, ['BODY_TOO_LARGE'], 'a body over ingest.maxBodyBytes');
    to(url, { ...json, ...rightful }, text.slice(0, random.int(1, text.length - 1)), ['MALFORMED_ENVELOPE'], 'truncated JSON');
    to(url, { ...json, ...rightful }, `[${text}]`, ['MALFORMED_ENVELOPE'], 'an array of it');
    if (format === 'distribution') {
      to(url, { ...json, ...rightful }, JSON.stringify({ events: valid().events[0] }), ['MALFORMED_ENVELOPE'], 'events an object');
      to(url, { ...json, ...rightful }, `${text.slice(0, -1)},"events":"none"}`, ['MALFORMED_ENVELOPE'], 'events given twice, last a string');
    }
  }
  return cases;
}

// ---------------------------------------------------------------- the store

let store: EventStore;
/** The newest event and replication before this file ran: what came after is this file's doing, or a worker's. */
let before: { seq: number; replication: number };

/** Rows that name anything under `base`: events, replications and dead letters. */
async function rowsNaming(base: string): Promise<{ events: number; replications: number; deadLetters: number }> {
  const pattern = `%${base}%`;
  const { rows } = await store.pool.query<{ events: number; replications: number; deadLetters: number }>(
    `SELECT (SELECT count(*)::int FROM events WHERE data::text LIKE $1) AS events,
            (SELECT count(*)::int FROM replications WHERE repository LIKE $1) AS replications,
            (SELECT count(*)::int FROM dead_letters WHERE event::text LIKE $1) AS "deadLetters"`,
    [pattern],
  );
  return rows[0]!;
}

/** The newest event seq and replication id. */
async function newest(): Promise<{ seq: number; replication: number }> {
  const { rows } = await store.pool.query<{ seq: number; replication: number }>(
    `SELECT (SELECT coalesce(max(seq), 0)::int FROM events) AS seq, (SELECT coalesce(max(id), 0)::int FROM replications) AS replication`,
  );
  return rows[0]!;
}

/** Events appended after `since.seq` that belong to no replication recorded by then: what a request could have added. */
async function eventsRecordedSince(since: { seq: number; replication: number }): Promise<number> {
  const { rows } = await store.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM events WHERE seq > $1 AND (replication_id IS NULL OR replication_id > $2)`, [since.seq, since.replication]);
  return rows[0]!.n;
}

function referenceProblems(row: { id: string; repository: string; tag: string | null; digest: string | null }): string[] {
  const problems: string[] = [];
  for (const [field, value, parse] of [['repository', row.repository, parseRepositoryName], ['tag', row.tag, parseTag], ['digest', row.digest, parseDigest]] as const) {
    if (value === null && field !== 'repository') continue;
    try {
      if (parse(value) !== value) problems.push(`replication ${row.id}: ${field} ${JSON.stringify(value)} is not its own parse`);
    } catch (error) {
      problems.push(`replication ${row.id}: ${(error as Error).message}`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------- the tests

let routes: Route[];
const acceptedIds: number[] = [];

beforeAll(async () => {
  console.info(`fuzz seed ${seed} (replay: FERRY_FUZZ_SEED=${seed}); repositories under ${refusedBase} and ${fuzzBase}`);
  store = connectStore(config);
  before = await newest();
  routes = await documentedRoutes();
});
afterAll(async () => {
  agent.destroy();
  await store.close();
});

describe(`the api at its edges (seed ${seed})`, () => {
  it('has a generator for every route the OpenAPI document lists, and for every notification format', () => {
    const names = routes.map((route) => route.name);
    expect(names.filter((name) => GENERATORS[name] === undefined), 'documented routes the fuzzer cannot generate requests for').toEqual([]);
    expect(Object.keys(GENERATORS).filter((name) => !names.includes(name)), 'generators of routes the document no longer lists').toEqual([]);
    const ingest = routes.find((route) => route.name === INGEST_ROUTE)!;
    expect(documentedFormats(ingest).filter((format) => !(format in EXAMPLES)), 'notification formats without example bodies').toEqual([]);
    expect(documentedFormats(ingest).length).toBeGreaterThan(0);
  });

  it('refuses notifications at the edge with a code, and records nothing of them', async () => {
    const ingest = routes.find((route) => route.name === INGEST_ROUTE)!;
    const cases = refusedCases(root.fork('refused'), documentedFormats(ingest) as Format[]);
    const since = await newest();
    const { problems, accepted } = await fuzz(cases);
    expect(problems, `seed ${seed}`).toEqual([]);
    expect(accepted).toEqual([]);
    expect(await eventsRecordedSince(since), 'events recorded by refused notifications').toBe(0);
    expect(await rowsNaming(refusedBase)).toEqual({ events: 0, replications: 0, deadLetters: 0 });
  });

  it('answers every generated request below 500, in the error shape, and stays up', async () => {
    const random = root.fork('routes');
    const generated = Array.from({ length: RANDOM_CASES }, (_, index) => {
      // Notifications take half the requests: the one route that writes.
      const route = index % 2 === 0 ? routes.find((candidate) => candidate.name === INGEST_ROUTE)! : random.pick(routes);
      return GENERATORS[route.name]!(random, route);
    });
    const swept = sweepCases(root.fork('sweep'), routes);
    const accepted = acceptedCases(root.fork('accepted'));
    // The accepted few go first, so their replications are under way while the rest runs.
    const { problems, accepted: ids } = await fuzz([...accepted, ...random.sample([...generated, ...swept], generated.length + swept.length)]);
    acceptedIds.push(...ids);
    console.info(`${accepted.length + generated.length + swept.length} requests over ${routes.length} routes (${swept.length} of them sweeping each GET parameter); ${ids.length} replication(s) accepted`);
    expect(problems, `seed ${seed}`).toEqual([]);
    expect(ids.length, 'accepted replications').toBeLessThanOrEqual(accepted.length);
  });

  it('records replications only of valid repositories, tags and digests', async () => {
    const { rows } = await store.pool.query<{ id: string; repository: string; tag: string | null; digest: string | null }>(
      `SELECT id::text, repository, tag, digest FROM replications WHERE id > $1 OR repository LIKE $2 ORDER BY id`,
      [before.replication, `${runBase}/%`],
    );
    expect(rows.flatMap(referenceProblems), `seed ${seed}`).toEqual([]);
    const underFuzz = rows.filter((row) => row.repository.startsWith(`${fuzzBase}/`)).map((row) => Number(row.id));
    expect(underFuzz.sort((a, b) => a - b), 'replications under the fuzzed base are exactly those the api answered as accepted').toEqual([...new Set(acceptedIds)].sort((a, b) => a - b));
    expect((await rowsNaming(refusedBase)).replications).toBe(0);
  });

  it('answers URLs outside every route, and requests too large to route, in the error shape', async () => {
    const admin = bearer(config, 'admin');
    const outside: Array<Omit<FuzzCase, 'expect'>> = [
      ...['/v1/nope', '/v1/replications/1/events/extra', '/v1/replications/../events', '/v1/replications/%2e%2e/events', '/v1/replications/%zz/events', '/v1/status/'].map((path) => ({ method: 'GET', path, headers: admin, note: 'admin' })),
      ...[['POST', '/v1/status'], ['DELETE', '/v1/replications/1/events'], ['PUT', '/v1/notifications/distribution/eastus'], ['POST', '/v1/notifications/distribution'], ['POST', '/v1/notifications/distribution/'], ['POST', '/v1/notifications/%zz/eastus']].map(([method, path]) => ({
        method: method!,
        path: path!,
        headers: { ...bearer(config, 'ingest-eastus'), 'content-type': 'application/json' },
        body: '{"events":[]}',
        note: 'ingest-eastus',
      })),
      { method: 'GET', path: `/v1/replications/${'1'.repeat(MAX_PARAMETER_LENGTH + 1)}/events`, headers: admin, note: 'a path parameter over the router\'s maximum' },
      { method: 'GET', path: `/v1/status?repository=${'a'.repeat(20_000)}&tag=v1`, headers: admin, note: 'a 20 KB query' },
      { method: 'GET', path: '/v1/replications', headers: { ...admin, 'x-padding': 'p'.repeat(20_000) }, note: 'a 20 KB header' },
    ];
    const cases = outside.map((fuzzCase): FuzzCase => ({ ...fuzzCase, expect: { kind: 'refused' }, fresh: true }));
    const { problems } = await fuzz(cases);
    expect(problems).toEqual([]);
  });
});
