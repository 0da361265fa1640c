import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../domain/duration';
import { parseDigest } from '../../domain/reference';
import { stuckQuery, type StuckReplication } from '../../api/stuck-replications';
import { formatStuckReport } from '../../cli/stuck-report';

describe('parseDuration (ferry stuck --older-than)', () => {
  it.each([
    ['90s', 90_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['2d', 172_800_000],
    ['1h30m', 5_400_000],
    ['0s', 0],
    [' 5s ', 5_000],
  ])('reads %s as %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '10', 'm', '10x', '-5m', '1.5h', '10 m', '10min', 'h1'])('rejects %j with an example of what it accepts', (text) => {
    expect(() => parseDuration(text)).toThrow(/is not a duration: .*e\.g\. 90s, 10m, 1h/);
  });

  it.each(['3651d', '100000000d', '99999999999999999999d', '3650d1s'])('refuses %j: longer than ten years, no date is that far', (text) => {
    expect(() => parseDuration(text)).toThrow(/is longer than 3650 days/);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [400, '0s'],
    [45_000, '45s'],
    [725_000, '12m 5s'],
    [3_600_000, '1h'],
    [3_720_000, '1h 2m'],
    [90_061_000, '1d 1h'],
  ])('writes %i ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe('stuckQuery', () => {
  it('asks visibility for running workflows whose last progress is before the cutoff', () => {
    expect(stuckQuery(new Date('2026-11-22T07:30:00Z'))).toBe(`ExecutionStatus = 'Running' AND FerryLastProgressAt < '2026-11-22T07:30:00.000Z'`);
  });
});

describe('formatStuckReport', () => {
  const now = new Date('2026-11-22T08:00:00Z');
  const replication: StuckReplication = {
    workflowId: 'push team/app:v1 sha256:3490ab910a42 #17',
    reference: 'team/app:v1@sha256:3490ab910a421572adaa14d2961176f3eb03fab029f77e41e160a2dd8d74747b',
    phase: 'replicate',
    pendingRegions: ['southeastasia'],
    lastProgressAt: new Date('2026-11-22T07:47:55Z'),
    regions: [
      {
        region: 'southeastasia',
        workflowId: 'push team/app:v1 sha256:3490ab910a42 #17 → southeastasia',
        phase: 'blobs',
        lastProgressAt: new Date('2026-11-22T07:47:50Z'),
        activities: [
          {
            activityType: 'copyBlob',
            attempt: 9,
            maximumAttempts: 0,
            state: 'scheduled',
            lastFailure: 'connect ECONNREFUSED 127.0.0.1:9002',
            nextRetryAt: new Date('2026-11-22T08:00:21Z'),
            lastHeartbeatAt: null,
            progress: null,
          },
        ],
        note: null,
      },
    ],
  };

  /** The shape of replicateChange: the region is the activity id, its progress the heartbeat details. */
  const regionActivity: StuckReplication = {
    ...replication,
    regions: [
      {
        region: 'southeastasia',
        workflowId: 'push team/app:v1 sha256:3490ab910a42 #17',
        phase: 'blobs',
        lastProgressAt: new Date('2026-11-22T07:47:50Z'),
        activities: [
          {
            activityType: 'replicateIntoRegion',
            attempt: 4,
            maximumAttempts: 0,
            state: 'scheduled',
            lastFailure: 'connect ECONNREFUSED 127.0.0.1:9002',
            nextRetryAt: new Date('2026-11-22T08:00:08Z'),
            lastHeartbeatAt: new Date('2026-11-22T07:47:50Z'),
            progress: {
              phase: 'blobs',
              progressAt: '2026-11-22T07:47:50.000Z',
              reached: { phase: 'blobs', bytesDone: 17_000_000 },
              blobs: 3,
              blobsDone: 1,
              bytesTotal: 35_000_000,
              bytesDone: 17_000_000,
              copying: [{ digest: parseDigest('sha256:3490ab910a421572adaa14d2961176f3eb03fab029f77e41e160a2dd8d74747b'), bytesDone: 12_000_000, size: 30_000_000 }],
              uploads: {},
            },
          },
        ],
        note: null,
      },
    ],
  };

  it('shows a region activity with the phase, blobs and bytes of its last heartbeat', () => {
    const lines = formatStuckReport([regionActivity], 600_000, now).split('\n');
    expect(lines.slice(6)).toEqual([
      '  stuck on southeastasia: phase blobs, no progress for 12m 10s (workflow "push team/app:v1 sha256:3490ab910a42 #17")',
      '    activity replicateIntoRegion: attempt 4, scheduled, next retry in 8s, last heartbeat 12m 10s ago',
      '      progress: 1 of 3 blobs, 17.0 of 35.0 MB; moving sha256:3490ab910a42 12.0 of 30.0 MB',
      '      last failure: connect ECONNREFUSED 127.0.0.1:9002',
    ]);
  });

  it('shows, per stuck region, the activity, its attempt, the next retry and the last failure', () => {
    expect(formatStuckReport([replication], 600_000, now)).toBe(
      [
        '1 replication(s) without progress for 10m or more (now 2026-11-22T08:00:00.000Z)',
        '',
        'push team/app:v1 sha256:3490ab910a42 #17',
        '  reference      team/app:v1@sha256:3490ab910a421572adaa14d2961176f3eb03fab029f77e41e160a2dd8d74747b',
        '  last progress  12m 5s ago (2026-11-22T07:47:55.000Z)',
        '  phase          replicate, pending southeastasia',
        '  stuck on southeastasia: phase blobs, no progress for 12m 10s (workflow "push team/app:v1 sha256:3490ab910a42 #17 → southeastasia")',
        '    activity copyBlob: attempt 9, scheduled, next retry in 21s',
        '      last failure: connect ECONNREFUSED 127.0.0.1:9002',
      ].join('\n'),
    );
  });

  it("says what a region activity waits for: the notification of the target registry's own change", () => {
    const activity = regionActivity.regions[0]!.activities[0]!;
    const waitingFor = "the notification of eastus team/app:v1, which that region's registry pointed at sha256:3490ab910a42… and Ferry has not recorded yet";
    const waiting = { ...regionActivity, regions: [{ ...regionActivity.regions[0]!, phase: 'tag', activities: [{ ...activity, progress: { ...activity.progress!, phase: 'tag' as const, waitingFor } }] }] };
    expect(formatStuckReport([waiting], 600_000, now).split('\n')).toContain(`      waiting for ${waitingFor}`);
    expect(formatStuckReport([regionActivity], 600_000, now)).not.toContain('waiting for');
  });

  it('says why a region waits when no activity is pending', () => {
    const waiting = { ...replication, regions: [{ ...replication.regions[0]!, activities: [], note: 'a workflow task waits for a worker on ferry-control (attempt 1)' }] };
    expect(formatStuckReport([waiting], 600_000, now)).toContain('    no pending activity: a workflow task waits for a worker on ferry-control (attempt 1)');
  });

  it('says so when nothing is stuck', () => {
    expect(formatStuckReport([], 90_000, now)).toBe('no replication without progress for 1m 30s or more');
  });
});
