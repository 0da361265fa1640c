// Layer contents for the tests' and the bench's images: a one-file tar of
// pseudo-random bytes from AES-CTR keyed by a seed, so the same seed gives the
// same bytes (and digest) without storing them; and a stream tap for hashing
// or counting what passes.
import { createCipheriv, createHash } from 'node:crypto';
import { Transform } from 'node:stream';

/** Passes chunks through, showing each to `observe` (hashing, counting). */
export function tap(observe: (chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      observe(chunk);
      callback(null, chunk);
    },
  });
}

const TAR_BLOCK = 512;
const CHUNK = 1 << 20;

/** A one-file ustar archive with fixed metadata, so identical seeds give identical bytes. */
export function* tarChunks(name: string, size: number, seed: string): Generator<Buffer> {
  yield tarHeader(name, size);
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const keystream = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK);
  for (let remaining = size; remaining > 0; remaining -= CHUNK) {
    yield keystream.update(zeros.subarray(0, Math.min(CHUNK, remaining)));
  }
  const padding = (TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK;
  yield Buffer.alloc(padding + 2 * TAR_BLOCK);
}

function tarHeader(name: string, size: number): Buffer {
  const header = Buffer.alloc(TAR_BLOCK);
  const field = (offset: number, length: number, value: string) => header.write(value, offset, length, 'ascii');
  const octal = (offset: number, length: number, value: number) => field(offset, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
  field(0, 100, name);
  octal(100, 8, 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, 0);
  header.fill(' ', 148, 156);
  field(156, 1, '0');
  field(257, 8, 'ustar\u000000');
  const checksum = header.reduce((sum, byte) => sum + byte, 0);
  field(148, 8, `${checksum.toString(8).padStart(6, '0')}\0 `);
  return header;
}
