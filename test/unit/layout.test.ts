import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { linkFileBytes, parseLinkFile, StorageLayout } from '../../domain/layout';
import { parseDigest, parseRepositoryName, parseTag, type Digest } from '../../domain/reference';

const fixtures = new URL('../fixtures/distribution-2.8/', import.meta.url);
const keyListings = readdirSync(new URL('keys/', fixtures)).filter(
  (name) => name.startsWith('eastus-') || name === 'westeurope-final.txt',
);

/** `size key` lines of a listing taken from a real 2.8 registry's bucket. */
function listedKeys(listing: string): { size: number; key: string }[] {
  return readFileSync(new URL(`keys/${listing}`, fixtures), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [size, key] = line.trim().split(/\s+/);
      return { size: Number(size), key: key! };
    });
}

const digestOf = (hex: string): Digest => parseDigest(`sha256:${hex}`);
const layout = new StorageLayout('');
const HEX = '([0-9a-f]{64})';
const ROOT = '^docker/registry/v2/';

// One reading of each key shape; the StorageLayout method must rebuild the key
// from the parsed repository, tag and digest.
const keyShapes: { method: string; pattern: RegExp; rebuild: (m: string[]) => string }[] = [
  {
    method: 'blobData',
    pattern: new RegExp(`${ROOT}blobs/sha256/[0-9a-f]{2}/${HEX}/data$`),
    rebuild: ([, hex]) => layout.blobData(digestOf(hex!)),
  },
  {
    method: 'layerLink',
    pattern: new RegExp(`${ROOT}repositories/(.+)/_layers/sha256/${HEX}/link$`),
    rebuild: ([, repo, hex]) => layout.layerLink(parseRepositoryName(repo), digestOf(hex!)),
  },
  {
    method: 'revisionLink',
    pattern: new RegExp(`${ROOT}repositories/(.+)/_manifests/revisions/sha256/${HEX}/link$`),
    rebuild: ([, repo, hex]) => layout.revisionLink(parseRepositoryName(repo), digestOf(hex!)),
  },
  {
    method: 'tagCurrentLink',
    pattern: new RegExp(`${ROOT}repositories/(.+)/_manifests/tags/([^/]+)/current/link$`),
    rebuild: ([, repo, tag]) => layout.tagCurrentLink(parseRepositoryName(repo), parseTag(tag)),
  },
  {
    method: 'tagIndexLink',
    pattern: new RegExp(`${ROOT}repositories/(.+)/_manifests/tags/([^/]+)/index/sha256/${HEX}/link$`),
    rebuild: ([, repo, tag, hex]) => layout.tagIndexLink(parseRepositoryName(repo), parseTag(tag), digestOf(hex!)),
  },
];

describe('StorageLayout against a real 2.8 registry bucket', () => {
  it.each(keyListings)('rebuilds every key of %s with exactly one method', (listing) => {
    const keys = listedKeys(listing);
    expect(keys.length).toBeGreaterThan(0);
    for (const { size, key } of keys) {
      const shapes = keyShapes.filter((shape) => shape.pattern.test(key));
      expect(shapes.map((shape) => shape.method), key).toHaveLength(1);
      const [shape] = shapes;
      expect(shape!.rebuild(shape!.pattern.exec(key)!), key).toBe(key);
      if (key.endsWith('/link')) expect(size, key).toBe(71);
    }
  });

  it('writes link files byte for byte as the registry does: 71 bytes, no newline', () => {
    const dumps = readFileSync(new URL('link-bytes.txt', fixtures), 'utf8').split(/^== /m).filter(Boolean);
    expect(dumps).toHaveLength(5);
    for (const dump of dumps) {
      const [header, ...lines] = dump.trim().split('\n');
      const [, key, length] = /^(\S+) \((\d+) bytes\)$/.exec(header!)!;
      const bytes = Buffer.from(lines.map((line) => line.slice(10).split('  ')[0]!.replace(/ /g, '')).join(''), 'hex');
      expect(bytes.length, key).toBe(Number(length));
      expect(bytes.length, key).toBe(71);
      const digest = parseLinkFile(bytes);
      expect(digest, key).not.toBeNull();
      expect(Buffer.from(linkFileBytes(digest!))).toEqual(bytes);
      // A link under a digest's own path holds that digest.
      const pathHex = /\/sha256\/([0-9a-f]{64})\/link$/.exec(key!)?.[1];
      if (pathHex) expect(digest).toBe(digestOf(pathHex));
    }
  });

  it('points v1 at the manifest pushed as v1 and latest at v2 after the move', () => {
    const dumps = readFileSync(new URL('link-bytes.txt', fixtures), 'utf8');
    const repository = parseRepositoryName('demo/app');
    expect(dumps).toContain(`== ${layout.tagCurrentLink(repository, parseTag('v1'))} (71 bytes)`);
    expect(dumps).toContain(`== ${layout.tagCurrentLink(repository, parseTag('latest'))} (71 bytes)`);
  });
});

describe('StorageLayout rootdirectory (registry-spec §1.7)', () => {
  const digest = digestOf('d5f3ee72bf43728c8fe575a4aabe61db7b402c572daa558213732546f0aa2c33');
  const blobTail = 'docker/registry/v2/blobs/sha256/d5/d5f3ee72bf43728c8fe575a4aabe61db7b402c572daa558213732546f0aa2c33/data';

  it.each([
    ['', blobTail],
    ['/', blobTail],
    ['/registry', `registry/${blobTail}`],
    ['registry/', `registry/${blobTail}`],
    ['/registry/', `registry/${blobTail}`],
    ['eu/prod', `eu/prod/${blobTail}`],
  ])('rootdirectory %j puts blob data at %s', (rootDirectory, key) => {
    expect(new StorageLayout(rootDirectory).blobData(digest)).toBe(key);
  });

  it('roots a tag link under the rootdirectory, never with a leading slash', () => {
    const key = new StorageLayout('/registry/').tagCurrentLink(parseRepositoryName('team/app'), parseTag('1.4'));
    expect(key).toBe('registry/docker/registry/v2/repositories/team/app/_manifests/tags/1.4/current/link');
  });
});

describe('tag prefixes', () => {
  const repository = parseRepositoryName('demo/app');
  const digest = digestOf('3490ab910a421572adaa14d2961176f3eb03fab029f77e41e160a2dd8d74747b');

  it("tagPrefix('v1') holds v1's keys and none of v10's", () => {
    const v1 = layout.tagPrefix(repository, parseTag('v1'));
    const v10 = parseTag('v10');
    expect(layout.tagCurrentLink(repository, parseTag('v1')).startsWith(v1)).toBe(true);
    expect(layout.tagIndexLink(repository, parseTag('v1'), digest).startsWith(v1)).toBe(true);
    expect(layout.tagCurrentLink(repository, v10).startsWith(v1)).toBe(false);
    expect(layout.tagIndexLink(repository, v10, digest).startsWith(v1)).toBe(false);
  });

  it('reads the digest back from a tag index link, and from no other key', () => {
    expect(layout.parseTagIndexLink(layout.tagIndexLink(repository, parseTag('v1'), digest))).toBe(digest);
    expect(new StorageLayout('/registry/').parseTagIndexLink(new StorageLayout('/registry/').tagIndexLink(repository, parseTag('1.4'), digest))).toBe(digest);
    expect(layout.parseTagIndexLink(layout.tagCurrentLink(repository, parseTag('v1')))).toBeNull();
    expect(layout.parseTagIndexLink(layout.revisionLink(repository, digest))).toBeNull();
    // Every tag index link a real 2.8 registry wrote.
    const indexLinks = keyListings.flatMap((listing) => listedKeys(listing)).filter(({ key }) => key.includes('/index/sha256/'));
    expect(indexLinks.length).toBeGreaterThan(0);
    for (const { key } of indexLinks) expect(layout.parseTagIndexLink(key)).toBe(digestOf(/index\/sha256\/([0-9a-f]{64})\/link$/.exec(key)![1]!));
  });
});

describe('parseLinkFile', () => {
  const digest = digestOf('a619da87f909e9fe5f89751ea8d01d9c4f8d3c9996c0be5112dbbe672fdb4f42');
  const encode = (text: string) => new TextEncoder().encode(text);

  it('reads a bare digest', () => {
    expect(parseLinkFile(linkFileBytes(digest))).toBe(digest);
  });

  it.each([
    ['a trailing newline', `${digest}\n`],
    ['a trailing CRLF', `${digest}\r\n`],
    ['uppercase hex', digest.toUpperCase()],
    ['an empty file', ''],
    ['a leading byte-order mark', `\uFEFF${digest}`],
  ])('rejects %s', (_, text) => {
    expect(parseLinkFile(encode(text))).toBeNull();
  });
});
