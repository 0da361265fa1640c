import { describe, expect, it } from 'vitest';
import { ConfigError, LOCAL_REGIONS, resolveConfig, sharesStorageEndpoint } from '../../domain/config';

const env = {
  FERRY_S3_A_ACCESS_KEY_ID: 'a',
  FERRY_S3_A_SECRET_ACCESS_KEY: 'a-secret',
  FERRY_S3_B_ACCESS_KEY_ID: 'b',
  FERRY_S3_B_SECRET_ACCESS_KEY: 'b-secret',
  FERRY_INGEST_TOKEN: 'token',
  FERRY_REGISTRY_SOUTHEASTASIA_USERNAME: 'puller',
  FERRY_REGISTRY_SOUTHEASTASIA_PASSWORD: 'pull-secret',
};

function problemsOf(input: unknown, environment: Record<string, string> = env): string[] {
  try {
    resolveConfig(input, environment);
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
    expect(config.ingest.token).toBe('token');
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
});
