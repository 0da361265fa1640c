// Scopes, token lookup and read grants (domain/auth.ts): the rules every api route applies.
import { describe, expect, it } from 'vitest';
import { bearerSecret, parseScope, permits, ReadGrant, TokenSet, type ApiToken } from '../../domain/auth';

const regions = ['eastus', 'westeurope'];
const token = (name: string, ...scopes: string[]): ApiToken => ({ name, secret: `${name}-secret-value`, scopes: scopes.map((scope) => parseScope(scope, regions)) });

describe('scopes', () => {
  it('parses each kind, a trailing slash on a prefix meaning the same as none', () => {
    expect(['ingest:eastus', 'read:team-a/', 'read:team-a/app', 'read:*', 'metrics', 'admin'].map((scope) => parseScope(scope, regions))).toEqual([
      { kind: 'ingest', region: 'eastus' },
      { kind: 'read', prefix: 'team-a' },
      { kind: 'read', prefix: 'team-a/app' },
      { kind: 'read', prefix: '*' },
      { kind: 'metrics' },
      { kind: 'admin' },
    ]);
  });

  it('refuses what is not a scope, a region not configured, and a prefix that is no repository path', () => {
    for (const bad of ['ingest', 'ingest:mars', 'read:', 'read:Team', 'read:team-a//x', 'read:team-*', 'admin:all', 'write:x', '']) {
      expect(() => parseScope(bad, regions), bad).toThrow(/scope|ingest needs|read needs/);
    }
  });
});

describe('read grants', () => {
  it('cover a prefix by whole path components, never a sibling that merely starts with it', () => {
    const grant = ReadGrant.of(token('team', 'read:team-a', 'read:shared/base'));
    expect(['team-a', 'team-a/app', 'team-a/app/sub', 'shared/base', 'shared/base/x'].filter((repository) => grant.covers(repository))).toHaveLength(5);
    expect(['team-ab', 'team-a-other/app', 'team', 'shared', 'shared/basement', 'team-b/app'].filter((repository) => grant.covers(repository))).toEqual([]);
  });

  it('cover everything for read:* and admin, nothing for an ingest or metrics token', () => {
    expect(ReadGrant.of(token('all', 'read:*')).covers('any/thing')).toBe(true);
    expect(ReadGrant.of(token('admin', 'admin')).sqlFilter()).toBeNull();
    for (const narrow of [token('ingest', 'ingest:eastus'), token('metrics', 'metrics')]) {
      expect(ReadGrant.of(narrow).any).toBe(false);
      expect(ReadGrant.of(narrow).covers('team-a/app')).toBe(false);
      expect(ReadGrant.of(narrow).sqlFilter()).toEqual({ exact: [], under: [] });
    }
  });

  it('filter SQL with LIKE wildcards escaped, so a_b/ does not match axb/', () => {
    expect(ReadGrant.of(token('t', 'read:a_b', 'read:c')).sqlFilter()).toEqual({ exact: ['a_b', 'c'], under: ['a\\_b/%', 'c/%'] });
  });
});

describe('tokens', () => {
  const tokens = [token('ingest-eastus', 'ingest:eastus'), token('reader', 'read:*'), token('ops', 'metrics'), token('root', 'admin')];
  const set = new TokenSet(tokens);

  it('finds a token by its exact secret only', () => {
    expect(set.find('reader-secret-value')?.name).toBe('reader');
    for (const wrong of ['', 'reader-secret-valu', 'reader-secret-value ', 'READER-SECRET-VALUE', 'x'.repeat(10_000)]) expect(set.find(wrong)).toBeNull();
  });

  it('reads a bearer header, and nothing else', () => {
    expect(bearerSecret('Bearer abc.def')).toBe('abc.def');
    expect(bearerSecret('bearer  abc ')).toBe('abc');
    for (const header of [undefined, '', 'Bearer', 'Bearer ', 'Basic dXNlcjpwdw==', 'Bearer a b', 'Token abc']) expect(bearerSecret(header), String(header)).toBeNull();
  });

  it('permits ingest only for its own region, metrics to metrics and admin, admin routes to admin alone', () => {
    const [ingest, reader, ops, root] = tokens as [ApiToken, ApiToken, ApiToken, ApiToken];
    expect([permits(ingest, 'ingest', 'eastus'), permits(ingest, 'ingest', 'westeurope'), permits(root, 'ingest', 'eastus')]).toEqual([true, false, false]);
    expect([permits(reader, 'read'), permits(ingest, 'read'), permits(ops, 'read'), permits(root, 'read')]).toEqual([true, false, false, true]);
    expect([permits(reader, 'metrics'), permits(ops, 'metrics'), permits(root, 'metrics')]).toEqual([false, true, true]);
    expect([permits(reader, 'admin'), permits(ops, 'admin'), permits(root, 'admin')]).toEqual([false, false, true]);
  });
});
