// The sha256 digest of bytes held whole in memory (a manifest, a listing Ferry
// merged), as Distribution names content. Streams hash in activities/hashing.ts.
// Not for workflow code: it needs node:crypto.
import { createHash } from 'node:crypto';
import { parseDigest, type Digest } from './reference';

export function digestOf(bytes: Uint8Array): Digest {
  return parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
}
