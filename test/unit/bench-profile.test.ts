import { describe, expect, it } from 'vitest';
import { hottestFunctions, profileTable, type CpuProfile } from '../../bench/profile';

const frame = (functionName: string, url: string, lineNumber: number) => ({ functionName, url, lineNumber });

const profile: CpuProfile = {
  startTime: 0,
  endTime: 10_000_000,
  samples: [],
  nodes: [
    { id: 1, callFrame: frame('(idle)', '', -1), hitCount: 50 },
    { id: 2, callFrame: frame('hashInParts', 'file:///repo/activities/blobs.ts', 79), hitCount: 30 },
    { id: 3, callFrame: frame('hashInParts', 'file:///repo/activities/blobs.ts', 79), hitCount: 10 },
    { id: 4, callFrame: frame('', 'file:///repo/node_modules/x.js', 0), hitCount: 10 },
  ],
};

describe('bench CPU profile summary', () => {
  it('adds up self time per function across call paths, hottest first', () => {
    expect(hottestFunctions(profile, '/repo/', 3)).toEqual([
      { name: '(idle)', selfShare: 0.5, selfSeconds: 5 },
      { name: 'hashInParts activities/blobs.ts:80', selfShare: 0.4, selfSeconds: 4 },
      { name: '(anonymous) node_modules/x.js:1', selfShare: 0.1, selfSeconds: 1 },
    ]);
  });

  it('renders a Markdown table per process', () => {
    expect(profileTable('worker', hottestFunctions(profile, '/repo/', 1))).toContain('| (idle) | 50.0% | 5.00 s |');
  });
});
