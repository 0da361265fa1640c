// What the edge fuzzing of the api generates from: a seeded pseudo-random
// stream, so a failing run replays from its seed, and the hostile values an
// edge must refuse or carry harmlessly: SQL metacharacters, path traversal,
// NATS subject tokens, control characters, awkward unicode, very long text,
// numbers out of range, and structures where a scalar belongs.

/** A small seeded generator (mulberry32): the same seed gives the same stream. */
export class Random {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** A number in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.int(0, items.length - 1)]!;
  }

  /** `count` distinct items, in random order. */
  sample<T>(items: readonly T[], count: number): T[] {
    const pool = [...items];
    const chosen: T[] = [];
    while (chosen.length < count && pool.length > 0) chosen.push(pool.splice(this.int(0, pool.length - 1), 1)[0]!);
    return chosen;
  }

  /** A string of `length` characters drawn from `alphabet`. */
  string(alphabet: string, length: number): string {
    const characters = [...alphabet];
    return Array.from({ length }, () => this.pick(characters)).join('');
  }

  /** An independent stream named `label`: one test's draws never shift another's. */
  fork(label: string): Random {
    let hash = this.seed ^ 0x9e3779b9;
    for (const character of label) hash = Math.imul(hash ^ character.charCodeAt(0), 0x01000193);
    return new Random(hash >>> 0);
  }
}

const HEX = '0123456789abcdef';
const NAME_CHARACTERS = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A digest no image has: 64 random hex characters. */
export function randomDigest(random: Random): string {
  return `sha256:${random.string(HEX, 64)}`;
}

/** A valid tag, sometimes at the edges of the grammar (a leading underscore, 128 characters). */
export function randomTag(random: Random): string {
  return random.pick([
    () => `v${random.int(0, 99)}.${random.int(0, 99)}.${random.int(0, 99)}`,
    () => `_${random.string('ABCxyz019._-', random.int(0, 20))}`,
    () => random.string('Az09', 1) + random.string('ABCXYZabcxyz0189._-', 127),
    () => 'latest',
  ])();
}

/** A valid path component of a repository name, separators included. */
export function randomNameComponent(random: Random): string {
  const run = () => random.string(NAME_CHARACTERS, random.int(1, 8));
  return random.pick([run, () => `${run()}.${run()}`, () => `${run()}__${run()}`, () => `${run()}---${run()}`])();
}

/** Text that is hard to compress, so a long value stays long in an index. */
function randomText(random: Random, length: number): string {
  return random.string(`${NAME_CHARACTERS}ABCXYZ-_.:/@ `, length);
}

/** Families of hostile text, each a list of makers. */
const HOSTILE_TEXT: Record<string, ReadonlyArray<(random: Random) => string>> = {
  sql: [
    () => "' OR '1'='1",
    () => "'; DROP TABLE events; --",
    () => '%',
    () => '_',
    () => '\\',
    () => "\\'",
    () => '%_%',
    () => 'a%/b_',
    () => '$1',
    () => "E'\\x00'",
    () => '/* */',
    () => ';',
    () => '--',
  ],
  traversal: [
    () => '../',
    () => '../../../etc/passwd',
    () => '%2e%2e/',
    () => '..%2f..%2f',
    () => '%2e%2e%2f',
    () => '..\\..\\',
    () => './',
    () => 'a/../b',
    () => '/',
    () => '//',
    () => 'a//b',
    () => '_layers',
    () => 'demo/_manifests/tags/v1/current',
    () => 'a/_uploads',
  ],
  nats: [() => '*', () => '>', () => 'a.*.b', () => 'a.>', () => 'a b', () => '.', () => 'a..b', () => 'ferry.replicated.>', () => ' ', () => '\t'],
  control: [
    () => '\u0000',
    () => 'a\u0000b',
    () => '\u0007\u0008',
    () => '\r\n',
    () => 'a\nb',
    () => '\u001b[31m',
    () => '\u007f',
    () => '\u0085',
    () => '\ud800',
    () => 'a\udfffb',
  ],
  unicode: [
    () => 'é',
    () => 'Ä/app',
    () => '\u202eppa',
    () => '😀',
    () => '𝕒𝕡𝕡',
    () => '\ufeffapp',
    () => 'İ',
    () => 'a\u0301',
    () => 'ａｐｐ',
    () => '／',
    () => '\u2028',
    () => '\u00a0',
  ],
  long: [(random) => randomText(random, random.int(256, 1024)), (random) => randomText(random, random.int(3000, 6000)), (random) => `${randomNameComponent(random)}/`.repeat(random.int(30, 90))],
  numeric: [() => '-1', () => '0', () => '1e309', () => 'NaN', () => 'Infinity', () => '9007199254740993', () => '99999999999999999999', () => '0x1f', () => ' 1', () => '+1', () => '1.5', () => '-0', () => '١٢٣'],
  empty: [() => '', () => 'null', () => 'undefined', () => '[]', () => '{}', () => 'true'],
};

const HOSTILE_FAMILIES = Object.keys(HOSTILE_TEXT);

/** One hostile string: from one family, sometimes two joined, sometimes around a valid `stem`. */
export function hostileText(random: Random, stem?: string): string {
  const one = () => random.pick(HOSTILE_TEXT[random.pick(HOSTILE_FAMILIES)]!)(random);
  switch (random.int(0, 4)) {
    case 0:
      return `${one()}${one()}`;
    case 1:
      return stem === undefined ? one() : `${stem}${one()}`;
    case 2:
      return stem === undefined ? one() : `${one()}${stem}`;
    default:
      return one();
  }
}

/** Numbers a field expecting a small non-negative integer should refuse or bound. */
const HOSTILE_NUMBERS = [-1, -0, 0.5, 2 ** 53, 2 ** 53 + 2, -(2 ** 63), 2 ** 64, 1e21, 1e308, -1e308, Number.MIN_VALUE];

/** A hostile JSON value: text, a number out of range, null, a boolean, or an array or object where a scalar belongs. */
export function hostileJson(random: Random, stem?: string, depth = 0): unknown {
  const scalar = () => random.pick<() => unknown>([() => hostileText(random, stem), () => random.pick(HOSTILE_NUMBERS), () => null, () => random.chance(0.5)])();
  if (depth > 1) return scalar();
  return random.pick<() => unknown>([
    scalar,
    scalar,
    scalar,
    () => (stem === undefined ? [] : [stem]),
    () => [hostileJson(random, stem, depth + 1), hostileJson(random, stem, depth + 1)],
    () => ({}),
    () => ({ $ne: null, [hostileText(random)]: hostileJson(random, stem, depth + 1) }),
    () => JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}') as unknown,
  ])();
}

const UNPAIRED_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** `text` with every unpaired surrogate replaced by U+FFFD, as a UTF-8 encoder would. */
export function wellFormed(text: string): string {
  return text.replace(UNPAIRED_SURROGATE, '\ufffd');
}

/** `value` percent-encoded for a URL; an unpaired surrogate (no UTF-8 form) as the three bytes a lax encoder sends. */
export function percentEncode(value: string): string {
  let encoded = '';
  // A string's iterator yields whole code points, and an unpaired surrogate alone.
  for (const character of value) {
    const code = character.codePointAt(0)!;
    encoded += code >= 0xd800 && code <= 0xdfff ? [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)].map((byte) => `%${byte.toString(16).toUpperCase()}`).join('') : encodeURIComponent(character);
  }
  return encoded;
}

/** Percent sequences a decoder must survive: invalid escapes, NUL, overlong and invalid UTF-8, encoded dots. */
export const RAW_ESCAPES = ['%', '%zz', '%0', '%00', '%2e%2e', '%2E%2E%2F', '%C0%AE', '%FF', '%ED%A0%80', '%E2%80%AE', '+', '%2B', '%25', '%%', '&', '=', '#', ';', '[]'];
