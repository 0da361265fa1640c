// Single flight: concurrent callers asking for the same key share one run of
// the work. A flight is forgotten the moment it settles, so a failed one is
// not remembered: the next caller starts afresh (as go-containerregistry's
// pusher does).

export class SingleFlight<T> {
  private readonly flights = new Map<string, Promise<T>>();

  /** Joins the flight for `key`, or starts one running `work`. */
  run(key: string, work: () => Promise<T>): Promise<T> {
    const running = this.flights.get(key);
    if (running) return running;
    const flight = work();
    this.flights.set(key, flight);
    const forget = () => {
      if (this.flights.get(key) === flight) this.flights.delete(key);
    };
    flight.then(forget, forget);
    return flight;
  }

  /** Resolves once no flight for `key` is running (however they ended), or when `signal` aborts. */
  async idle(key: string, signal: AbortSignal): Promise<void> {
    for (let running = this.flights.get(key); running && !signal.aborted; running = this.flights.get(key)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener('abort', done);
          resolve();
        };
        running!.then(done, done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  /** Whether a flight for `key` is running now. */
  running(key: string): boolean {
    return this.flights.has(key);
  }
}
