import { describe, expect, it } from 'vitest';
import {
  InvalidReferenceError,
  parseDigest,
  parseRepositoryName,
  parseTag,
  shortDigest,
} from '../../domain/reference';

const HEX = '3490ab910a421572adaa14d2961176f3eb03fab029f77e41e160a2dd8d74747b';
const nonStrings = [null, undefined, 42, {}, ['demo/app'], true];

describe('parseRepositoryName', () => {
  it.each(['demo/app', 'demo/mirror', 'payments/api', 'library/ubuntu', 'team/app', 'a', 'foo__bar', 'a-----b', 'a.b/c_d/e'])(
    'accepts %s',
    (name) => {
      expect(parseRepositoryName(name)).toBe(name);
    },
  );

  it.each([
    ['a parent-directory segment', 'demo/../app'],
    ['a bare ..', '..'],
    ['uppercase', 'Demo/app'],
    ['a reserved _layers directory', '_layers'],
    ['a reserved _manifests component', 'a/_manifests'],
    ['a leading slash', '/demo/app'],
    ['a trailing slash', 'demo/app/'],
    ['an empty component', 'demo//app'],
    ['a leading separator', '-app'],
    ['a trailing separator', 'app.'],
    ['three underscores', 'a___b'],
    ['an empty name', ''],
    ['more than 255 characters', `a/${'b'.repeat(254)}`],
  ])('rejects %s', (_, name) => {
    expect(() => parseRepositoryName(name)).toThrow(InvalidReferenceError);
  });

  it.each(nonStrings)('rejects the non-string %j', (value) => {
    expect(() => parseRepositoryName(value)).toThrow(InvalidReferenceError);
  });
});

describe('parseTag', () => {
  it.each(['v1', 'latest', 'multi', '2.7.1', '_private', 'sha256-' + HEX, 'x'.repeat(128)])('accepts %s', (tag) => {
    expect(parseTag(tag)).toBe(tag);
  });

  it.each([
    ['a slash', 'v1/beta'],
    ['129 characters', 'x'.repeat(129)],
    ['a leading dot', '.v1'],
    ['a leading dash', '-v1'],
    ['a colon', 'v1:2'],
    ['an empty tag', ''],
  ])('rejects %s', (_, tag) => {
    expect(() => parseTag(tag)).toThrow(InvalidReferenceError);
  });

  it.each(nonStrings)('rejects the non-string %j', (value) => {
    expect(() => parseTag(value)).toThrow(InvalidReferenceError);
  });
});

describe('parseDigest', () => {
  it('accepts a canonical sha256 digest', () => {
    expect(parseDigest(`sha256:${HEX}`)).toBe(`sha256:${HEX}`);
  });

  it.each([
    ['sha512', `sha512:${HEX}${HEX}`],
    ['uppercase hex', `sha256:${HEX.toUpperCase()}`],
    ['an uppercase algorithm', `SHA256:${HEX}`],
    ['63 hex characters', `sha256:${HEX.slice(1)}`],
    ['65 hex characters', `sha256:${HEX}0`],
    ['a trailing newline', `sha256:${HEX}\n`],
    ['no algorithm', HEX],
  ])('rejects %s', (_, digest) => {
    expect(() => parseDigest(digest)).toThrow(InvalidReferenceError);
  });

  it.each(nonStrings)('rejects the non-string %j', (value) => {
    expect(() => parseDigest(value)).toThrow(InvalidReferenceError);
  });
});

describe('naming references for operators', () => {
  const repository = parseRepositoryName('demo/app');
  const digest = parseDigest(`sha256:${HEX}`);

  it('names the field and the value in the error', () => {
    expect(() => parseTag('v1/beta')).toThrow(
      expect.objectContaining({ field: 'tag', message: expect.stringContaining('"v1/beta"') }),
    );
  });

  it('shortens a digest for names an operator reads', () => {
    expect(shortDigest(digest)).toBe('sha256:3490ab910a42');
  });
});
