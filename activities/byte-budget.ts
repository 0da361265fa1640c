// A worker-wide budget of blob bytes held in memory. Every part a copy reads
// into memory (a multipart part, or a small blob read whole) is taken from it
// before the bytes are read and given back once they are uploaded, so the
// worker's memory for blob bytes stays under the budget whatever the layer
// sizes and however many copies run at once. Waiters are served in order, so
// a large part is not starved by small ones.
//
// It cannot deadlock: whoever holds bytes is either reading (which finishes
// by itself) or uploading (likewise), and then gives them back.

interface Waiter {
  bytes: number;
  resolve: () => void;
}

export class ByteBudget {
  private available: number;
  private readonly waiting: Waiter[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`a byte budget must be a positive integer, not ${limit}`);
    this.available = limit;
  }

  /** Bytes not taken right now. */
  get free(): number {
    return this.available;
  }

  /**
   * Takes `bytes` (the whole budget, for a part larger than it) once they are
   * free; the returned function gives them back, once however often it is called.
   */
  async take(bytes: number, signal?: AbortSignal): Promise<() => void> {
    const wanted = Math.min(Math.max(bytes, 0), this.limit);
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

  private serve(): void {
    while (this.waiting.length > 0 && this.waiting[0]!.bytes <= this.available) {
      const waiter = this.waiting.shift()!;
      this.available -= waiter.bytes;
      waiter.resolve();
    }
  }
}
