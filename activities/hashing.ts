// Reading a source blob once: every byte hashed, and cut into part-sized runs
// for an upload, with reading and uploading overlapping. Memory is a few parts
// per copy, each taken from the worker's ByteBudget before it is read.
import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { ByteBudget } from './byte-budget';

/** Part uploads in flight while the next part is read: reading and uploading overlap. */
const PARTS_IN_FLIGHT = 2;

/**
 * Reads `stream` to its end, hashing every byte and handing each run of
 * `partSize` bytes (the last one shorter; one empty part for an empty stream)
 * to `onPart`, numbered from 1, with up to `PARTS_IN_FLIGHT` of them running
 * while reading goes on. Returns once every `onPart` finished; the first one
 * to fail fails the read.
 */
export async function hashInParts(
  stream: Readable,
  partSize: number,
  budget: ByteBudget,
  onPart: (part: Buffer, partNumber: number) => Promise<void>,
  signal?: AbortSignal,
): Promise<{ hash: Hash; bytes: number }> {
  const hash = createHash('sha256');
  const inFlight: Array<Promise<void>> = [];
  const hand = async (part: Buffer, partNumber: number, giveBack: () => void): Promise<void> => {
    const running = onPart(part, partNumber).finally(giveBack);
    // Handled here so a failure while reading goes on is not "unhandled"; awaiting it below still throws.
    running.catch(() => undefined);
    inFlight.push(running);
    if (inFlight.length >= PARTS_IN_FLIGHT) await inFlight.shift();
  };
  // Each part is one buffer of partSize, filled as chunks arrive: no chunk is kept, and nothing is copied twice.
  // The last, shorter part is a view of its buffer; giving it back gives the whole buffer back.
  let held: (() => void) | null = null;
  let part: Buffer | null = null;
  let filled = 0;
  let bytes = 0;
  let partNumber = 1;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
      for (let offset = 0; offset < chunk.length; ) {
        if (part === null) {
          // A buffer the budget kept from an earlier part, or a new one: given back once uploaded.
          ({ part, giveBack: held } = await budget.takePart(partSize, signal));
          filled = 0;
        }
        const copied = chunk.copy(part, filled, offset, Math.min(chunk.length, offset + partSize - filled));
        filled += copied;
        offset += copied;
        if (filled === partSize) {
          const [full, giveBack] = [part, held!];
          [part, held] = [null, null];
          await hand(full, partNumber++, giveBack);
        }
      }
    }
    if (part !== null || partNumber === 1) {
      const giveBack = held ?? (await budget.take(0, signal));
      held = null;
      await hand(part === null ? Buffer.alloc(0) : part.subarray(0, filled), partNumber, giveBack);
    }
    await Promise.all(inFlight);
  } finally {
    held?.();
  }
  return { hash, bytes };
}

/** Reads `stream` to its end, hashing every byte; `onChunk` sees each chunk and the bytes read so far. */
export async function hashStream(stream: Readable, onChunk: (chunk: Buffer, bytes: number) => void = () => undefined): Promise<{ hash: Hash; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
    onChunk(chunk, bytes);
  }
  return { hash, bytes };
}

/**
 * Reads a small stream whole into one buffer of `expected` bytes (the caller
 * took that from the budget), hashing it; nothing is copied twice. A stream
 * longer than expected is hashed to its end but keeps only `expected` bytes:
 * its hash then cannot match, and the caller refuses it.
 */
export async function readHashed(stream: Readable, expected: number): Promise<{ hash: Hash; bytes: number; data: Buffer }> {
  const data = Buffer.allocUnsafe(expected);
  const { hash, bytes } = await hashStream(stream, (chunk, read) => {
    const offset = read - chunk.length;
    if (offset < expected) chunk.copy(data, offset, 0, Math.min(chunk.length, expected - offset));
  });
  return { hash, bytes, data: data.subarray(0, Math.min(bytes, expected)) };
}
