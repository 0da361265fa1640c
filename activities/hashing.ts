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
  let held: (() => void) | null = null;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let bytes = 0;
  let partNumber = 1;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      held ??= await budget.take(partSize, signal);
      hash.update(chunk);
      bytes += chunk.length;
      pending.push(chunk);
      pendingBytes += chunk.length;
      while (pendingBytes >= partSize) {
        const joined = Buffer.concat(pending, pendingBytes);
        const giveBack = held!;
        held = null;
        await hand(joined.subarray(0, partSize), partNumber++, giveBack);
        const rest = joined.subarray(partSize);
        pending = rest.length > 0 ? [rest] : [];
        pendingBytes = rest.length;
        if (rest.length > 0) held = await budget.take(partSize, signal);
      }
    }
    if (pendingBytes > 0 || partNumber === 1) {
      const giveBack = held ?? (await budget.take(pendingBytes, signal));
      held = null;
      await hand(Buffer.concat(pending, pendingBytes), partNumber, giveBack);
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

/** Reads a small stream whole (the caller took its size from the budget), hashing it. */
export async function readHashed(stream: Readable): Promise<{ hash: Hash; bytes: number; data: Buffer }> {
  const chunks: Buffer[] = [];
  const { hash, bytes } = await hashStream(stream, (chunk) => chunks.push(chunk));
  return { hash, bytes, data: Buffer.concat(chunks, bytes) };
}
