import { describe, expect, it } from 'vitest';
import { ConfigError, LOCAL_REGIONS, resolveConfig, sharesStorageEndpoint } from '../../domain/config';

const env = {
  FERRY_S3_A_ACCESS_KEY_ID: 'a',
  FERRY_S3_A_SECRET_ACCESS_KEY: 'a-secret',
  FERRY_S3_B_ACCESS_KEY_ID: 'b',
  FERRY_S3_B_SECRET_ACCESS_KEY: 'b-secret',
  FERRY_INGEST_TOKEN_EASTUS: 'ingest-eastus-secret',
  FERRY_INGEST_TOKEN_WESTEUROPE: 'ingest-westeurope-secret',
  FERRY_INGEST_TOKEN_SOUTHEASTASIA: 'ingest-southeastasia-secret',
  FERRY_READ_TOKEN: 'read-secret',
  FERRY_ADMIN_TOKEN: 'admin-secret',
  FERRY_REGISTRY_SOUTHEASTASIA_USERNAME: 'puller',
  FERRY_REGISTRY_SOUTHEASTASIA_PASSWORD: 'pull-secret',
};

function problemsOf(input: unknown, environment: Record<string, string> = env, files: Record<string, string> = {}): string[] {
  try {
    resolveConfig(input, environment, (path) => {
      if (files[path] === undefined) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
      return files[path];
    });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('configuration', () => {
  it('defaults to the local three-region stack, with secrets from the environment', () => {
    const config = resolveConfig({}, env);
    expect(config.regions.map((region) => region.name)).toEqual(['eastus', 'westeurope', 'southeastasia']);
    expect(config.regions[2]!.s3.credentials).toEqual({ accessKeyId: 'b', secretAccessKey: 'b-secret' });
    // Each region's registry has its own ingest token; a reader and an admin token complete the local set.
    expect(config.auth.tokens).toEqual([
      { name: 'ingest-eastus', secret: 'ingest-eastus-secret', scopes: [{ kind: 'ingest', region: 'eastus' }] },
      { name: 'ingest-westeurope', secret: 'ingest-westeurope-secret', scopes: [{ kind: 'ingest', region: 'westeurope' }] },
      { name: 'ingest-southeastasia', secret: 'ingest-southeastasia-secret', scopes: [{ kind: 'ingest', region: 'southeastasia' }] },
      { name: 'reader', secret: 'read-secret', scopes: [{ kind: 'read', prefix: '*' }] },
      { name: 'admin', secret: 'admin-secret', scopes: [{ kind: 'admin' }] },
    ]);
    expect(config.temporal.address).toBe('127.0.0.1:7233');
    // Only southeastasia's registry asks for a login; its credentials come from the variables it names.
    expect(config.regions.map((region) => region.registryCredentials)).toEqual([null, null, { username: 'puller', password: 'pull-secret' }]);
  });

  it('lets eastus and westeurope copy server-side, and southeastasia only by streaming', () => {
    const [eastus, westeurope, southeastasia] = resolveConfig({}, env).regions;
    expect(sharesStorageEndpoint(eastus!, westeurope!)).toBe(true);
    expect(sharesStorageEndpoint(eastus!, southeastasia!)).toBe(false);
  });

  it('names the field and the problem of a bad value', () => {
    const regions = structuredClone(LOCAL_REGIONS);
    regions[1]!.s3.endpoint = 'ftp://nowhere';
    regions[2]!.name = 'Bad Name';
    expect(problemsOf({ regions, ingest: { port: 70000 } })).toEqual([
      'regions.1.s3.endpoint: must be an http(s) URL',
      'regions.2.name: must be lowercase letters, digits and dashes, starting with a letter',
      'ingest.port: Too big: expected number to be <=65535',
    ]);
  });

  it('rejects duplicate region names and a single region', () => {
    expect(problemsOf({ regions: [LOCAL_REGIONS[0], LOCAL_REGIONS[0]] })).toEqual(['regions.1.name: duplicate region name "eastus"']);
    expect(problemsOf({ regions: [LOCAL_REGIONS[0]] })).toEqual(['regions: needs at least two regions to replicate between']);
  });

  it('says which environment variable is missing instead of starting without credentials', () => {
    const { FERRY_S3_B_SECRET_ACCESS_KEY: _omitted, ...partial } = env;
    expect(problemsOf({}, partial)).toEqual(['regions.2.s3.secretAccessKeyEnv: environment variable FERRY_S3_B_SECRET_ACCESS_KEY is not set']);
  });

  it('says which registry login variable is missing, and rejects a login that names no variable', () => {
    const { FERRY_REGISTRY_SOUTHEASTASIA_PASSWORD: _omitted, ...partial } = env;
    expect(problemsOf({}, partial)).toEqual(['regions.2.registryAuth.passwordEnv: environment variable FERRY_REGISTRY_SOUTHEASTASIA_PASSWORD is not set']);
    const regions = LOCAL_REGIONS.map((region, index) => (index === 0 ? { ...region, registryAuth: { usernameEnv: 'user name', passwordEnv: 'P' } } : region));
    expect(problemsOf({ regions })).toEqual(['regions.0.registryAuth.usernameEnv: must be an environment variable name']);
  });

  it('reads scoped tokens from the environment and from a tokens file', () => {
    const config = resolveConfig(
      { auth: { tokens: [{ name: 'ci', tokenEnv: 'CI_TOKEN', scopes: ['read:team-a/', 'metrics'] }], tokensFile: '/run/secrets/ferry-tokens.json' } },
      { ...env, CI_TOKEN: 'ci-secret-value' },
      () => JSON.stringify([{ name: 'team-b', token: 'team-b-secret-value', scopes: ['read:team-b'] }]),
    );
    expect(config.auth.tokens.slice(3)).toEqual([
      { name: 'ci', secret: 'ci-secret-value', scopes: [{ kind: 'read', prefix: 'team-a' }, { kind: 'metrics' }] },
      { name: 'team-b', secret: 'team-b-secret-value', scopes: [{ kind: 'read', prefix: 'team-b' }] },
    ]);
  });

  it('names every bad token: unknown scope, unknown region, bad prefix, unreadable file, shared secret, shared name', () => {
    const tokens = [
      { name: 'x', tokenEnv: 'X_TOKEN', scopes: ['write:all', 'ingest:mars', 'read:Team A'] },
      { name: 'copy', tokenEnv: 'X_TOKEN', scopes: ['read:*'] },
      { name: 'copy', tokenEnv: 'FERRY_ADMIN_TOKEN', scopes: ['admin'] },
    ];
    expect(problemsOf({ auth: { tokens, tokensFile: '/missing.json' } }, { ...env, X_TOKEN: 'x-secret' })).toEqual([
      'auth.tokens.0.scopes.0: "write:all" is not a scope: use ingest:<region>, read:<prefix>, read:*, metrics or admin',
      'auth.tokens.0.scopes.1: "ingest:mars": ingest needs a configured region (eastus, westeurope, southeastasia)',
      'auth.tokens.0.scopes.2: "read:Team A": read needs a repository prefix (team-a, team-a/app) or *',
      "auth.tokensFile /missing.json: ENOENT: no such file or directory, open '/missing.json'",
      'auth: tokens "x" and "copy" have the same secret; give each its own',
      'auth: two tokens are named "copy"',
    ]);
  });

  it('refuses a tokens file that is not a list of tokens, and a config no registry could notify', () => {
    expect(problemsOf({ auth: { tokensFile: '/t.json' } }, env, { '/t.json': '[{"name":"t","token":"short","scopes":[]}]' })).toEqual([
      'auth.tokensFile /t.json: 0.token: must be at least 16 characters',
      'auth.tokensFile /t.json: 0.scopes: give at least one scope',
    ]);
    const regions = LOCAL_REGIONS.map(({ ingestTokenEnv: _none, ...region }) => region);
    expect(problemsOf({ regions })).toEqual([
      'auth: no token may send notifications; give each region an ingestTokenEnv (scopes: ingest:eastus, ingest:westeurope, ingest:southeastasia)',
    ]);
    // The deprecated shared token still works, for every region.
    const shared = resolveConfig({ regions, ingest: { tokenEnv: 'SHARED' } }, { ...env, SHARED: 'shared-secret' });
    expect(shared.auth.tokens[0]).toEqual({ name: 'ingest-shared', secret: 'shared-secret', scopes: ['eastus', 'westeurope', 'southeastasia'].map((region) => ({ kind: 'ingest', region })) });
  });
});
