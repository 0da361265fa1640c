// Reading a registry's WWW-Authenticate challenge (RFC 7235), as the pull
// check does before logging in (activities/registry-client.ts).
import { describe, expect, it } from 'vitest';
import { parseAuthChallenge, pullScope } from '../../domain/registry-api';

describe('parseAuthChallenge', () => {
  it('reads the Basic challenge of Distribution with htpasswd auth', () => {
    expect(parseAuthChallenge('Basic realm="ferry-southeastasia"')).toEqual({ scheme: 'basic', realm: 'ferry-southeastasia' });
  });

  it('reads a Bearer challenge with realm, service and scope, in any order and case', () => {
    expect(parseAuthChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"')).toEqual({
      scheme: 'bearer',
      realm: 'https://auth.docker.io/token',
      service: 'registry.docker.io',
      scope: 'repository:library/alpine:pull',
    });
    expect(parseAuthChallenge('bearer Scope="repository:a/b:pull,push", Realm="https://ghcr.io/token"')).toEqual({
      scheme: 'bearer',
      realm: 'https://ghcr.io/token',
      service: null,
      scope: 'repository:a/b:pull,push',
    });
  });

  it('reads unquoted and escaped values', () => {
    expect(parseAuthChallenge('Bearer realm=https://auth/token,service="a \\"quoted\\" name"')).toEqual({ scheme: 'bearer', realm: 'https://auth/token', service: 'a "quoted" name', scope: null });
  });

  it('answers null for what Ferry cannot log in to', () => {
    expect(parseAuthChallenge(null)).toBeNull();
    expect(parseAuthChallenge('')).toBeNull();
    expect(parseAuthChallenge('Negotiate')).toBeNull();
    expect(parseAuthChallenge('Bearer service="registry"')).toBeNull();
  });

  it('asks for a pull of the repository when a challenge names no scope', () => {
    expect(pullScope('team/app')).toBe('repository:team/app:pull');
  });
});
