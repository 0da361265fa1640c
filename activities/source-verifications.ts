// Source blobs this worker has read and hashed, by (source region, digest):
// the ETag of the object whose bytes hashed to the digest. A server-side copy
// of the blob into another region needs only that proof, because its
// CopyObject is conditioned on the ETag (CopySourceIfMatch): the bytes copied
// are exactly the bytes verified. So one read of a source blob authorises
// every server-side copy, instead of one read per region.
//
// A verification in flight (`begin`: a read at full speed, for a server-side
// copy or a blob of one part) is waited for; one that failed (corrupt,
// missing, aborted) is forgotten, so the next copy reads and judges for
// itself. A streamed multipart copy reads at its target's pace, so nobody
// waits for it: it `record`s its verdict once reached.

const DEFAULT_CAPACITY = 4096;

export interface Verification {
  /** The source's bytes hashed to the digest; `etag` is the object they were read from. */
  verified(etag: string): void;
  /** The read ended without a verdict worth sharing. */
  abandoned(): void;
}

export class SourceVerifications {
  /** Oldest first (Map keeps insertion order): the first to go past capacity. */
  private readonly entries = new Map<string, Promise<string | null>>();

  constructor(private readonly capacity = DEFAULT_CAPACITY) {}

  /** The ETag verified for this blob, waiting for a verification in flight; null when none is known or it failed. */
  async lookup(region: string, digest: string): Promise<string | null> {
    return (await this.entries.get(keyOf(region, digest))) ?? null;
  }

  /** Whether a verification of this blob is known (in flight or done). */
  has(region: string, digest: string): boolean {
    return this.entries.has(keyOf(region, digest));
  }

  /** A read of this blob starts: others may wait for its verdict. */
  begin(region: string, digest: string): Verification {
    const key = keyOf(region, digest);
    let settle!: (etag: string | null) => void;
    const entry = new Promise<string | null>((resolve) => {
      settle = resolve;
    });
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    let settled = false;
    const finish = (etag: string | null) => {
      if (settled) return;
      settled = true;
      settle(etag);
      if (etag === null && this.entries.get(key) === entry) this.entries.delete(key);
    };
    return { verified: (etag) => finish(etag), abandoned: () => finish(null) };
  }

  /** A verdict reached by a read nobody waited for: kept for the copies that come later. */
  record(region: string, digest: string, etag: string): void {
    this.begin(region, digest).verified(etag);
  }

  /** The ETag no longer holds (the source object changed): verify again next time. */
  forget(region: string, digest: string): void {
    this.entries.delete(keyOf(region, digest));
  }
}

function keyOf(region: string, digest: string): string {
  return `${region}\u0000${digest}`;
}
