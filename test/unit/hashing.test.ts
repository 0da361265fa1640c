// Reading a blob once into parts: the hash covers every byte, the parts cut
// at exactly the part size, and the bytes held never exceed the budget.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ByteBudget } from '../../activities/byte-budget';
import { hashInParts, readHashed } from '../../activities/hashing';

const PART = 1024;

function bytesOf(length: number): Buffer {
  return Buffer.from(Array.from({ length }, (_, index) => (index * 7 + 3) % 256));
}

/** A stream of `data` in chunks of `chunk` bytes, as S3 bodies arrive. */
function streamOf(data: Buffer, chunk = 100): Readable {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += chunk) chunks.push(data.subarray(offset, offset + chunk));
  return Readable.from(chunks);
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function cut(data: Buffer, budget = new ByteBudget(4 * PART)) {
  const parts: Array<{ number: number; bytes: Buffer }> = [];
  const { hash, bytes } = await hashInParts(streamOf(data), PART, budget, async (part, number) => {
    parts.push({ number, bytes: Buffer.from(part) });
  });
  return { hex: hash.digest('hex'), bytes, parts };
}

describe('hashInParts', () => {
  it.each([
    ['0 bytes', 0, [0]],
    ['one byte', 1, [1]],
    ['exactly one part', PART, [PART]],
    ['one part plus one byte', PART + 1, [PART, 1]],
    ['exactly three parts', 3 * PART, [PART, PART, PART]],
    ['three parts less one byte', 3 * PART - 1, [PART, PART, PART - 1]],
  ])('%s: hashes every byte and cuts parts of %s', async (_name, length, sizes) => {
    const data = bytesOf(length);
    const { hex, bytes, parts } = await cut(data);
    expect(hex).toBe(sha256(data));
    expect(bytes).toBe(length);
    parts.sort((a, b) => a.number - b.number);
    expect(parts.map((part) => part.bytes.length)).toEqual(sizes);
    expect(parts.map((part) => part.number)).toEqual(sizes.map((_, index) => index + 1));
    expect(Buffer.concat(parts.map((part) => part.bytes))).toEqual(data);
  });

  it('holds at most the budget in parts being read or uploaded, and gives it all back', async () => {
    const budget = new ByteBudget(2 * PART);
    let held = 0;
    let most = 0;
    await hashInParts(streamOf(bytesOf(10 * PART + 5), 333), PART, budget, async (part) => {
      held += part.length;
      most = Math.max(most, held);
      await new Promise((resolve) => setTimeout(resolve, 2));
      held -= part.length;
    });
    expect(most).toBeLessThanOrEqual(2 * PART);
    expect(budget.free).toBe(2 * PART);
  });

  it('fails with the first failing part, and gives its bytes back', async () => {
    const budget = new ByteBudget(4 * PART);
    const failing = hashInParts(streamOf(bytesOf(5 * PART)), PART, budget, async (_part, number) => {
      if (number === 2) throw new Error('upload of part 2 refused');
    });
    await expect(failing).rejects.toThrow('upload of part 2 refused');
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(budget.free).toBe(4 * PART);
  });
});

describe('readHashed', () => {
  it('returns the bytes whole with their hash', async () => {
    const data = bytesOf(PART + 17);
    const read = await readHashed(streamOf(data), data.length);
    expect(read.data).toEqual(data);
    expect(read.bytes).toBe(PART + 17);
    expect(read.hash.digest('hex')).toBe(sha256(data));
  });

  it.each([
    ['shorter', 100, 90],
    ['longer', 100, 110],
    ['empty', 0, 0],
  ])('a stream %s than expected: hashes all it read, keeps no more than expected', async (_name, expected, length) => {
    const data = bytesOf(length);
    const read = await readHashed(streamOf(data, 7), expected);
    expect(read.bytes).toBe(length);
    expect(read.hash.digest('hex')).toBe(sha256(data));
    expect(read.data).toEqual(data.subarray(0, Math.min(length, expected)));
  });
});

describe('ByteBudget', () => {
  it('lets takers through while bytes are free, and queues the rest in order', async () => {
    const budget = new ByteBudget(100);
    const first = await budget.take(60);
    const order: string[] = [];
    const second = budget.take(60).then((giveBack) => (order.push('second'), giveBack));
    const third = budget.take(10).then((giveBack) => (order.push('third'), giveBack));
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(order).toEqual([]);
    first();
    (await second)();
    (await third)();
    expect(order).toEqual(['second', 'third']);
    expect(budget.free).toBe(100);
  });

  it('gives a part larger than the budget the whole budget, and a giveBack counts once', async () => {
    const budget = new ByteBudget(100);
    const giveBack = await budget.take(500);
    expect(budget.free).toBe(0);
    giveBack();
    giveBack();
    expect(budget.free).toBe(100);
  });

  it('drops a waiter whose copy was cancelled', async () => {
    const budget = new ByteBudget(10);
    const holder = await budget.take(10);
    const cancel = new AbortController();
    const waiting = budget.take(5, cancel.signal);
    cancel.abort(new Error('cancelled'));
    await expect(waiting).rejects.toThrow('cancelled');
    holder();
    expect(budget.free).toBe(10);
  });

  it('hands a part buffer given back to the next part of its size, and its bytes stay counted', async () => {
    const budget = new ByteBudget(100);
    const first = await budget.takePart(40);
    first.giveBack();
    expect(budget.keptBuffers).toBe(1);
    const second = await budget.takePart(40);
    expect(second.part).toBe(first.part);
    const other = await budget.takePart(30);
    expect(other.part).not.toBe(first.part);
    expect(budget.free).toBe(30);
    first.giveBack();
    expect(budget.free).toBe(30);
    second.giveBack();
    other.giveBack();
    expect(budget.free).toBe(100);
    expect(budget.keptBuffers).toBe(2);
  });

  it('never holds more than the budget in part buffers, kept ones included', async () => {
    const budget = new ByteBudget(100);
    const parts = await Promise.all([budget.takePart(40), budget.takePart(40)]);
    for (const { giveBack } of parts) giveBack();
    // 80 bytes are kept; a taker of 50 drops one kept buffer, not the budget's bound.
    const plain = await budget.take(50);
    expect(budget.keptBuffers).toBe(1);
    const part = await budget.takePart(40);
    expect([parts[0]!.part, parts[1]!.part]).toContain(part.part);
    expect(budget.free).toBe(10);
    const waiter = budget.takePart(40);
    let served = false;
    void waiter.then(() => (served = true));
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(served).toBe(false);
    // Given back while somebody waits: not kept, its bytes serve the waiter.
    part.giveBack();
    const next = await waiter;
    expect(budget.keptBuffers).toBe(0);
    next.giveBack();
    plain();
    expect(budget.free).toBe(100);
  });

  it('does not keep a part larger than the budget', async () => {
    const budget = new ByteBudget(100);
    const big = await budget.takePart(500);
    expect(big.part.length).toBe(500);
    expect(budget.free).toBe(0);
    big.giveBack();
    big.giveBack();
    expect(budget.keptBuffers).toBe(0);
    expect(budget.free).toBe(100);
  });

  it('reuses part buffers across blobs read into parts, and their bytes come out right', async () => {
    const budget = new ByteBudget(4 * PART);
    for (const length of [3 * PART + 17, 2 * PART, 5 * PART - 1]) {
      const data = Buffer.from(bytesOf(length).map((byte) => (byte + length) % 256));
      const { hex, parts } = await cut(data, budget);
      expect(hex).toBe(sha256(data));
      parts.sort((a, b) => a.number - b.number);
      expect(Buffer.concat(parts.map((part) => part.bytes))).toEqual(data);
    }
    expect(budget.keptBuffers).toBeGreaterThan(0);
    expect(budget.keptBuffers).toBeLessThanOrEqual(4);
    expect(budget.free).toBe(4 * PART);
  });

  it('refuses a budget that is not a positive integer', () => {
    expect(() => new ByteBudget(0)).toThrow(RangeError);
  });
});
