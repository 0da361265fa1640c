import { describe, expect, it } from 'vitest';
import { localEnv, parseEnvFile } from '../../support/local-env';

describe('parseEnvFile', () => {
  it('reads KEY=value lines, keeps = inside values, and skips comments, blanks and other lines', () => {
    expect(parseEnvFile('# comment\n\nA=1\n  B_2=x=y  \nlower=no\nC=\n')).toEqual({ A: '1', B_2: 'x=y', C: '' });
  });

  it('reads stack/local.env', () => {
    expect(Object.keys(localEnv()).length).toBeGreaterThan(0);
  });
});
