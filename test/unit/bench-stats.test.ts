import { describe, expect, it } from 'vitest';
import { distribution, megabytesPerSecond, percentile } from '../../bench/stats';

describe('bench statistics', () => {
  it('interpolates percentiles between closest ranks, whatever the input order', () => {
    const samples = [5, 1, 4, 2, 3];
    expect(percentile(samples, 0)).toBe(1);
    expect(percentile(samples, 50)).toBe(3);
    expect(percentile(samples, 100)).toBe(5);
    expect(percentile(samples, 95)).toBeCloseTo(4.8);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });

  it('summarises lag samples as count, p50, p95, p99 and max', () => {
    const samples = Array.from({ length: 101 }, (_, index) => index / 10);
    expect(distribution(samples)).toEqual({ count: 101, p50: 5, p95: 9.5, p99: 9.9, max: 10 });
  });

  it('counts throughput in decimal megabytes', () => {
    expect(megabytesPerSecond(300_000_000, 2)).toBe(150);
  });
});
