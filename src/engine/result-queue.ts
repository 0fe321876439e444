/**
 * A FIFO between the code that completes messages and the consumer that reads
 * them: an async iterable of batches (everything available at once, so the
 * consumer pays one await per batch, not per item) whose producer can wait
 * until the consumer caught up.
 */

/** An async queue with an end, an error, and room-waiting for backpressure. */
export class ResultQueue<T> implements AsyncIterable<T[]> {
  private items: T[] = [];
  /** The summed weight of `items` (e.g. the messages they hold). */
  private weight = 0;
  private ended = false;
  private abandoned = false;
  private failure: unknown = null;
  private reader: (() => void) | null = null;
  private roomWaiters: { limit: number; resolve: () => void }[] = [];
  /** Items handed to the reader that it has not come back from yet. */
  private reading: T[] = [];

  /**
   * `onTaken` hears of items once the reader is done with them (it asked for more, or left), and of items
   * pushed after it left: what they hold can be counted free then.
   */
  constructor(private readonly onTaken: (items: T[]) => void = () => {}) {}

  /** The weight waiting to be read. */
  get size(): number {
    return this.weight;
  }

  push(item: T, weight = 1): void {
    if (this.abandoned) {
      this.onTaken([item]);
      return;
    }
    this.items.push(item);
    this.weight += weight;
    this.wakeReader();
  }

  /** The reader is gone: drop what comes, and never make a producer wait again. */
  abandon(): void {
    this.abandoned = true;
    const dropped = [...this.reading, ...this.items];
    this.reading = [];
    this.items = [];
    this.weight = 0;
    this.onTaken(dropped);
    for (const w of this.roomWaiters.splice(0)) w.resolve();
  }

  /** No more items; a failure is thrown to the reader after the queued items. */
  end(failure: unknown = null): void {
    this.ended = true;
    this.failure = failure;
    this.wakeReader();
  }

  /** Resolves once no more than `limit` items wait to be read. */
  waitForRoom(limit: number): Promise<void> {
    if (this.size <= limit || this.abandoned) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push({ limit, resolve }));
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T[]> {
    for (;;) {
      if (this.items.length > 0) {
        const batch = this.items;
        this.items = [];
        this.weight = 0;
        this.wakeProducers();
        this.reading = batch;
        yield batch;
        // Back for more: the reader is done with this batch (the CLI has handed it to stdout).
        this.reading = [];
        this.onTaken(batch);
        continue;
      }
      if (this.ended) {
        if (this.failure !== null) throw this.failure;
        return;
      }
      await new Promise<void>((resolve) => { this.reader = resolve; });
    }
  }

  private wakeReader(): void {
    const reader = this.reader;
    this.reader = null;
    reader?.();
  }

  private wakeProducers(): void {
    if (this.roomWaiters.length === 0) return;
    const size = this.size;
    this.roomWaiters = this.roomWaiters.filter((w) => {
      if (size > w.limit) return true;
      w.resolve();
      return false;
    });
  }
}
