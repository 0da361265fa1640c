import { describe, expect, it } from 'vitest';
import { parseDigest, parseRepositoryName, parseTag } from '../../domain/reference';
import { deletedSubject, regionMessageFilter, replicatedSubject } from '../../domain/subjects';

const repository = parseRepositoryName('team.a/app-server');
const tag = parseTag('v1.2.3');
const digest = parseDigest(`sha256:${'ab'.repeat(32)}`);

// NATS token rules: no '.', '*', '>' or whitespace inside a token.
function tokens(subject: string): string[] {
  return subject.split('.');
}

describe('NATS subjects', () => {
  it('keeps a dotted repository and tag inside one token each', () => {
    const subject = replicatedSubject('westeurope', repository, tag, digest);
    expect(tokens(subject)).toEqual(['ferry', 'replicated', 'westeurope', 'team%2Ea/app-server', 'v1%2E2%2E3', 'ab'.repeat(32)]);
  });

  it('lets a waiter filter one tag or one digest in one region', () => {
    const subject = replicatedSubject('westeurope', repository, tag, digest);
    const matches = (filter: string) => {
      const want = tokens(filter);
      const have = tokens(subject);
      return want.length === have.length && want.every((token, i) => token === '*' || token === have[i]);
    };
    expect(matches(regionMessageFilter('westeurope', repository, { tag }))).toBe(true);
    expect(matches(regionMessageFilter('westeurope', repository, { digest }))).toBe(true);
    expect(matches(regionMessageFilter('eastus', repository, { tag }))).toBe(false);
    expect(matches(regionMessageFilter('westeurope', repository, { tag: parseTag('v1') }))).toBe(false);
  });

  it('marks a push by digest and a tag delete with "-", which no tag starts with', () => {
    expect(replicatedSubject('eastus', repository, null, digest)).toBe(`ferry.replicated.eastus.team%2Ea/app-server.-.${'ab'.repeat(32)}`);
    expect(deletedSubject('eastus', repository, tag, null)).toBe('ferry.deleted.eastus.team%2Ea/app-server.v1%2E2%2E3.-');
  });

  it('never produces a wildcard or empty token', () => {
    for (const subject of [replicatedSubject('eastus', repository, null, digest), deletedSubject('eastus', repository, null, digest)]) {
      expect(tokens(subject).every((token) => token.length > 0 && !/[*> ]/.test(token))).toBe(true);
    }
  });
});
