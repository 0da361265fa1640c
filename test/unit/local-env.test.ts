import { describe, expect, it } from 'vitest';
import { LOCAL_REGIONS, resolveConfig } from '../../domain/config';
import { localEnv, parseEnvFile } from '../../support/local-env';

describe('parseEnvFile', () => {
  it('reads KEY=value lines, keeps = inside values, and skips comments, blanks and other lines', () => {
    expect(parseEnvFile('# comment\n\nA=1\n  B_2=x=y  \nlower=no\nC=\n')).toEqual({ A: '1', B_2: 'x=y', C: '' });
  });

  it('reads stack/local.env', () => {
    expect(Object.keys(localEnv()).length).toBeGreaterThan(0);
  });

  it("sets every secret the default configuration names, each region's ingest token its own", () => {
    // resolveConfig names every variable it misses, and refuses two tokens with one secret.
    const config = resolveConfig({}, localEnv());
    expect(config.regions.map((region) => region.name)).toEqual(LOCAL_REGIONS.map((region) => region.name));
    const logins = config.regions.filter((region) => region.registryCredentials !== null).map((region) => region.name);
    expect(logins).toEqual(LOCAL_REGIONS.filter((region) => 'registryAuth' in region && region.registryAuth !== undefined).map((region) => region.name));
  });
});
