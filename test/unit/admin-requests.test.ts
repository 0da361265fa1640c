// What the admin routes accept before they start anything: a reconcile or
// backfill body is read into the same scope `ferry reconcile|backfill` builds
// from flags, and anything else is a 400 with Ferry's error code.
import { describe, expect, it } from 'vitest';
import { backfillRequest, olderThanOf, reconcileRequest, runLocation } from '../../api/admin';
import type { Client } from '@temporalio/client';
import { backfillScopeOf, controlRun, InvalidScopeError, reconcileScopeOf, startBackfill, UnknownRegionError } from '../../api/control-workflows';
import { ApiError } from '../../api/ingest';
import { InvalidReferenceError } from '../../domain/reference';

const REGIONS = ['eastus', 'westeurope', 'southeastasia'];

/** The status, code and message an ApiError thrown by `run` answers with. */
function refusal(run: () => unknown): { status: number; code: string; message: string } {
  try {
    run();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    return { status: error.statusCode, code: error.code, message: error.message };
  }
  throw new Error('expected a refusal, and the request was accepted');
}

describe('POST /v1/admin/reconcile body', () => {
  it('reconciles every repository without a body or a list, and the repositories named otherwise, once each', () => {
    expect(reconcileRequest(undefined)).toEqual({});
    expect(reconcileRequest(null)).toEqual({});
    expect(reconcileRequest({})).toEqual({});
    expect(reconcileRequest({ repositories: ['team/app', 'team/web', 'team/app'] })).toEqual({ repositories: ['team/app', 'team/web'] });
  });

  it.each([
    [[], 'INVALID_BODY', 'the body must be a JSON object'],
    ['team/app', 'INVALID_BODY', 'the body must be a JSON object'],
    [{ repository: ['team/app'] }, 'INVALID_BODY', 'unknown field(s) repository; the body may hold repositories'],
    [{ repositories: [] }, 'INVALID_BODY', 'repositories must be a non-empty list of repository names'],
    [{ repositories: 'team/app' }, 'INVALID_BODY', 'repositories must be a non-empty list of repository names'],
    [{ repositories: ['team/app', 7] }, 'INVALID_BODY', 'repositories must be a non-empty list of repository names'],
    [{ repositories: ['team/app', 'Team/App'] }, 'INVALID_REFERENCE', 'invalid repository "Team/App"'],
    [{ repositories: ['../etc'] }, 'INVALID_REFERENCE', 'invalid repository "../etc"'],
  ])('refuses %j with 400 %s', (body, code, message) => {
    const answer = refusal(() => reconcileRequest(body));
    expect(answer).toMatchObject({ status: 400, code });
    expect(answer.message).toContain(message);
  });
});

describe('POST /v1/admin/backfill body', () => {
  it('takes repositories or all, and optionally the regions to fill', () => {
    expect(backfillRequest({ all: true }, REGIONS)).toEqual({});
    expect(backfillRequest({ repositories: ['team/app'] }, REGIONS)).toEqual({ repositories: ['team/app'] });
    expect(backfillRequest({ all: true, to: ['southeastasia', 'westeurope'] }, REGIONS)).toEqual({ to: ['southeastasia', 'westeurope'] });
  });

  it.each([
    [undefined, 'INVALID_BODY', 'give repositories (one or more) or all: true'],
    [{}, 'INVALID_BODY', 'give repositories (one or more) or all: true'],
    [{ all: true, repositories: ['team/app'] }, 'INVALID_BODY', 'give repositories (one or more) or all: true'],
    [{ all: false }, 'INVALID_BODY', 'all must be true when given'],
    [{ all: 'yes' }, 'INVALID_BODY', 'all must be true when given'],
    [{ all: true, to: [] }, 'INVALID_BODY', 'to must be a non-empty list of region names'],
    [{ all: true, to: 'southeastasia' }, 'INVALID_BODY', 'to must be a non-empty list of region names'],
    [{ all: true, to: ['mars', 'eastus'] }, 'UNKNOWN_REGION', 'unknown region(s) mars; Ferry knows eastus, westeurope, southeastasia'],
    [{ repositories: ['Team/App'] }, 'INVALID_REFERENCE', 'invalid repository "Team/App"'],
    [{ all: true, regions: ['eastus'] }, 'INVALID_BODY', 'unknown field(s) regions'],
  ])('refuses %j with 400 %s', (body, code, message) => {
    const answer = refusal(() => backfillRequest(body, REGIONS));
    expect(answer).toMatchObject({ status: 400, code });
    expect(answer.message).toContain(message);
  });
});

describe('the scopes `ferry reconcile|backfill` build from flags', () => {
  it('are the ones the admin bodies give, refused with the same errors', () => {
    expect(reconcileScopeOf({ repositories: ['team/app'] })).toEqual(reconcileRequest({ repositories: ['team/app'] }));
    expect(backfillScopeOf({ repositories: ['team/app'], to: ['eastus'] }, REGIONS)).toEqual(backfillRequest({ repositories: ['team/app'], to: ['eastus'] }, REGIONS));
    expect(() => backfillScopeOf({ to: ['mars'] }, REGIONS)).toThrow(UnknownRegionError);
    expect(() => backfillScopeOf({ to: [] }, REGIONS)).toThrow(InvalidScopeError);
    expect(() => reconcileScopeOf({ repositories: ['Team/App'] })).toThrow(InvalidReferenceError);
  });
});

describe('a backfill workflow', () => {
  /** The options startBackfill starts its workflow with, on a client that only records them. */
  async function startOptions(scope: Parameters<typeof startBackfill>[1]) {
    const started: Array<{ workflowId: string; staticSummary: string; args: unknown[] }> = [];
    const temporal = { workflow: { start: async (_type: string, options: (typeof started)[number]) => started.push(options) } } as unknown as Client;
    await startBackfill(temporal, scope, new Date('2026-01-01T00:00:00Z'));
    return started[0]!;
  }

  it('is named after its repositories and regions, three repositories at most, so its id stays short', async () => {
    expect(await startOptions({ repositories: ['team/a', 'team/b'], to: ['southeastasia'] })).toMatchObject({
      workflowId: 'backfill team/a, team/b → southeastasia 2026-01-01T00:00:00.000Z',
      staticSummary: 'backfill team/a, team/b into southeastasia',
    });
    const many = Array.from({ length: 40 }, (_, index) => `team/app-${index}`);
    const options = await startOptions({ repositories: many });
    expect(options.workflowId).toBe('backfill team/app-0, team/app-1, team/app-2 and 37 more 2026-01-01T00:00:00.000Z');
    expect(options.args).toEqual([{ repositories: many }]);
    expect((await startOptions({})).staticSummary).toBe('backfill all repositories into every region');
  });
});

describe('GET /v1/admin/stuck?olderThan', () => {
  it('reads durations as `ferry stuck --older-than` does, and refuses others with 400 INVALID_QUERY', () => {
    expect(olderThanOf('10m')).toBe(600_000);
    expect(olderThanOf('1h30m')).toBe(5_400_000);
    expect(refusal(() => olderThanOf('ten minutes'))).toMatchObject({ status: 400, code: 'INVALID_QUERY', message: expect.stringMatching(/^olderThan: "ten minutes" is not a duration/) });
  });
});

describe('a run asked for by workflow id', () => {
  it('is none for an id Temporal would refuse to read, without asking it', async () => {
    const temporal = {} as Client;
    for (const workflowId of ['', 'reconcile \ud800', '\udfff']) expect(await controlRun(temporal, workflowId, 0)).toBeNull();
  });
});

describe('a run location', () => {
  it('carries the workflow id whole in the query, whatever it holds', () => {
    const workflowId = 'backfill team/a, team/b → southeastasia 2026-01-01T00:00:00.000Z';
    const location = runLocation(workflowId);
    expect(location.startsWith('/v1/admin/runs?workflowId=')).toBe(true);
    expect(new URL(location, 'http://ferry').searchParams.get('workflowId')).toBe(workflowId);
  });
});
