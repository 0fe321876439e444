/**
 * A FIFO between the code that completes messages and the consumer that reads
 * them: an async iterable whose producer can wait until the consumer caught up.
 */

/** An async queue with an end, an error, and room-waiting for backpressure. */
export class ResultQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private head = 0;
  private ended = false;
  private failure: unknown = null;
  private reader: (() => void) | null = null;
  private roomWaiters: { limit: number; resolve: () => void }[] = [];

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
    this.wakeReader();
  }

  /** No more items; a failure is thrown to the reader after the queued items. */
  end(failure: unknown = null): void {
    this.ended = true;
    this.failure = failure;
    this.wakeReader();
  }

  /** Resolves once no more than `limit` items wait to be read. */
  waitForRoom(limit: number): Promise<void> {
    if (this.size <= limit) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push({ limit, resolve }));
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      while (this.head < this.items.length) {
        const item = this.items[this.head]!;
        this.items[this.head++] = undefined as T;
        if (this.head > 1024 && this.head * 2 > this.items.length) {
          this.items = this.items.slice(this.head);
          this.head = 0;
        }
        this.wakeProducers();
        yield item;
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
