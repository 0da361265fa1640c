// The wait hub's rules (api/wait-hub.ts), with the event feed's one method
// driven by hand: waiters of one reference share reads, a change wakes only
// the watches it concerns, and limits refuse with 429 and free on release.
// test/stack/long-poll.test.ts proves the same on the live api.
import { describe, expect, it } from 'vitest';
import { TooManyWaitsError, WaitHub } from '../../api/wait-hub';
import type { ImageReference } from '../../domain/reference';
import type { PushRecord } from '../../domain/wait';
import type { EventChange } from '../../store/event-store';

function harness(limits = { maxWaits: 10, maxWaitsPerToken: 5 }) {
  let listener: (change: EventChange | null) => void = () => undefined;
  const reads: string[] = [];
  const hub = new WaitHub(
    { subscribe: (heard) => ((listener = heard), () => undefined) },
    async (reference: ImageReference) => {
      reads.push(`${reference.repository}:${reference.tag}`);
      return [{ replicationId: reads.length, kind: 'push', sourceRegion: 'eastus', observedAt: '', bytesTotal: 0, regions: {} } satisfies PushRecord];
    },
    limits,
  );
  return { hub, reads, change: (change: EventChange | null) => listener(change) };
}

const app: ImageReference = { repository: 'team/app', tag: 'v1' } as ImageReference;
const other: ImageReference = { repository: 'team/other', tag: 'v1' } as ImageReference;
const forever = new AbortController().signal;

describe('WaitHub', () => {
  it('reads a reference once for all its waiters, and again once per change that concerns it', async () => {
    const { hub, reads, change } = harness();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const waiters = Array.from({ length: 5 }, () =>
      hub.hold('t', app, async (watch) => {
        const first = await watch.current();
        await gate;
        await watch.current();
        return first[0]!.replicationId;
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(reads).toEqual(['team/app:v1']);
    change({ replicationId: 99, repository: 'team/unrelated' });
    change({ replicationId: 1, repository: null });
    release();
    expect(await Promise.all(waiters)).toEqual([1, 1, 1, 1, 1]);
    // The change naming a push the watch holds made it read again, once; the unrelated one did not.
    expect(reads).toEqual(['team/app:v1', 'team/app:v1']);
    expect(hub.size).toEqual({ waits: 0, watches: 0 });
  });

  it('wakes only the watches a change concerns, and all of them when the feed reconnects', async () => {
    const { hub, change } = harness();
    const woken: string[] = [];
    const wait = (reference: ImageReference) =>
      hub.hold('t', reference, async (watch) => {
        await watch.current();
        await watch.changed(1_000, forever);
        woken.push(reference.repository);
      });
    const both = [wait(app), wait(other)];
    await new Promise((resolve) => setTimeout(resolve, 10));
    change({ replicationId: 7, repository: 'team/other' });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(woken).toEqual(['team/other']);
    change(null);
    await Promise.all(both);
    expect(woken).toEqual(['team/other', 'team/app']);
  });

  it('refuses a wait beyond the token’s or the api’s maximum, and admits again once one ends', async () => {
    const { hub } = harness({ maxWaits: 3, maxWaitsPerToken: 2 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const held = [hub.hold('a', app, () => gate), hub.hold('a', app, () => gate)];
    await expect(hub.hold('a', app, async () => 'no')).rejects.toThrow(TooManyWaitsError);
    const third = hub.hold('b', other, () => gate);
    await expect(hub.hold('c', other, async () => 'no')).rejects.toMatchObject({ statusCode: 429, code: 'TOO_MANY_WAITS' });
    expect(hub.size).toEqual({ waits: 3, watches: 2 });
    release();
    await Promise.all([...held, third]);
    expect(await hub.hold('a', app, async () => 'yes')).toBe('yes');
  });

  it('reads again after a failed read, instead of answering from the pushes read before it', async () => {
    let fail = false;
    let reads = 0;
    let listener: (change: EventChange | null) => void = () => undefined;
    const hub = new WaitHub(
      { subscribe: (heard) => ((listener = heard), () => undefined) },
      async () => {
        reads++;
        if (fail) throw new Error('Postgres is down');
        return [{ replicationId: reads, kind: 'push', sourceRegion: 'eastus', observedAt: '', bytesTotal: 0, regions: {} } satisfies PushRecord];
      },
      { maxWaits: 10, maxWaitsPerToken: 10 },
    );
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const holder = hub.hold('t', app, async (watch) => {
      await watch.current();
      await gate;
      return (await watch.current())[0]!.replicationId;
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    listener({ replicationId: 1, repository: 'team/app' });
    fail = true;
    await expect(hub.hold('t', app, (watch) => watch.current())).rejects.toThrow('Postgres is down');
    fail = false;
    release();
    // The holder's next read is a fresh one (the third), not the first read's answer.
    expect(await holder).toBe(3);
  });
});
