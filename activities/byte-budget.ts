// A worker-wide budget of blob bytes held in memory. Every part a copy reads
// into memory (a multipart part, or a small blob read whole) is taken from it
// before the bytes are read and given back once they are uploaded, so the
// worker's memory for blob bytes stays under the budget whatever the layer
// sizes and however many copies run at once. Waiters are served in order, so
// a large part is not starved by small ones.
//
// It cannot deadlock: whoever holds bytes is either reading (which finishes
// by itself) or uploading (likewise), and then gives them back.
//
// Part buffers (takePart) are kept once given back, while nobody waits, and
// handed to the next part of that size: a worker copying gigabytes reuses a
// few buffers instead of allocating one per part, each of which V8 counts as
// new external memory and answers with a collection of the whole heap (the
// large bench: worker CPU 47 s without reuse, 21 s with it). A kept buffer's
// bytes stay taken, so the budget still bounds every part buffer alive; a
// taker the free bytes cannot serve drops kept buffers first.

interface Waiter {
  bytes: number;
  resolve: () => void;
}

export class ByteBudget {
  private available: number;
  private readonly waiting: Waiter[] = [];
  /** Part buffers given back and kept for reuse; their bytes count as taken until dropped. */
  private readonly kept: Buffer[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`a byte budget must be a positive integer, not ${limit}`);
    this.available = limit;
  }

  /** Bytes no copy holds right now (kept buffers are reclaimed when needed). */
  get free(): number {
    return this.available + this.keptBytes();
  }

  /** Part buffers kept for reuse right now. */
  get keptBuffers(): number {
    return this.kept.length;
  }

  /**
   * A buffer of `size` bytes taken from the budget: a kept one when there is
   * one of that size, else a new one. Giving it back keeps it for the next
   * part while nobody waits for bytes; the caller must not touch it after.
   */
  async takePart(size: number, signal?: AbortSignal): Promise<{ part: Buffer; giveBack: () => void }> {
    const wanted = this.bounded(size);
    const index = this.waiting.length === 0 ? this.kept.findIndex((buffer) => buffer.length === size) : -1;
    let part: Buffer;
    if (index !== -1) {
      // Its bytes are taken already.
      part = this.kept.splice(index, 1)[0]!;
    } else {
      // Given back below, not through take's own giveBack.
      await this.take(size, signal);
      part = Buffer.allocUnsafe(size);
    }
    let given = false;
    return {
      part,
      giveBack: () => {
        if (given) return;
        given = true;
        if (this.waiting.length === 0 && wanted === size) {
          this.kept.push(part);
        } else {
          this.available += wanted;
          this.serve();
        }
      },
    };
  }

  /**
   * Takes `bytes` (the whole budget, for a part larger than it) once they are
   * free; the returned function gives them back, once however often it is called.
   */
  async take(bytes: number, signal?: AbortSignal): Promise<() => void> {
    const wanted = this.bounded(bytes);
    if (this.waiting.length === 0) this.dropKept(wanted);
    if (this.waiting.length === 0 && this.available >= wanted) {
      this.available -= wanted;
    } else {
      await new Promise<void>((resolve, reject) => {
        const waiter: Waiter = { bytes: wanted, resolve };
        this.waiting.push(waiter);
        signal?.addEventListener('abort', () => {
          const index = this.waiting.indexOf(waiter);
          if (index === -1) return;
          this.waiting.splice(index, 1);
          this.serve();
          reject(signal.reason);
        }, { once: true });
      });
    }
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.available += wanted;
      this.serve();
    };
  }

  /** What a take of `bytes` takes: the whole budget for more than it. */
  private bounded(bytes: number): number {
    return Math.min(Math.max(bytes, 0), this.limit);
  }

  private keptBytes(): number {
    return this.kept.reduce((sum, buffer) => sum + buffer.length, 0);
  }

  /** Drops kept buffers (their memory goes with the next GC) until `wanted` bytes are available or none is kept. */
  private dropKept(wanted: number): void {
    while (this.available < wanted && this.kept.length > 0) this.available += this.kept.pop()!.length;
  }

  private serve(): void {
    while (this.waiting.length > 0) {
      this.dropKept(this.waiting[0]!.bytes);
      if (this.waiting[0]!.bytes > this.available) return;
      const waiter = this.waiting.shift()!;
      this.available -= waiter.bytes;
      waiter.resolve();
    }
  }
}
