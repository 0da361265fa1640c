// domain/event-time.ts: a registry's event time is used up to Ferry's clock
// plus the allowed skew, never beyond, so a future date cannot win or freeze.
import { describe, expect, it } from 'vitest';
import { boundedEventTime } from '../../domain/event-time';

const observedAt = new Date('2026-11-24T12:00:00.000Z');

describe('boundedEventTime', () => {
  it('keeps a time in the past or within the skew as reported', () => {
    expect(boundedEventTime('2026-11-24T11:00:00.000Z', observedAt, 10)).toEqual({ occurredAt: '2026-11-24T11:00:00.000Z', reportedAt: null });
    expect(boundedEventTime('2026-11-24T12:00:10.000Z', observedAt, 10)).toEqual({ occurredAt: '2026-11-24T12:00:10.000Z', reportedAt: null });
  });

  it('bounds a time beyond the skew to observation plus skew, keeping what was reported', () => {
    expect(boundedEventTime('2026-11-24T12:00:10.001Z', observedAt, 10)).toEqual({
      occurredAt: '2026-11-24T12:00:10.000Z',
      reportedAt: '2026-11-24T12:00:10.001Z',
    });
    expect(boundedEventTime('2027-11-24T12:00:00.000Z', observedAt, 0)).toEqual({
      occurredAt: '2026-11-24T12:00:00.000Z',
      reportedAt: '2027-11-24T12:00:00.000Z',
    });
  });

  it('refuses what is not a time', () => {
    expect(() => boundedEventTime('yesterday', observedAt, 10)).toThrow(/not a time/);
  });
});
