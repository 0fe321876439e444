/**
 * A gate that producers wait at while the consumer is behind: closed when a high-water mark is
 * reached, opened again below a low one (asyncio's pause_reading/resume_reading, as a promise).
 */
export class Room {
  private waiters: (() => void)[] = [];
  private closed = false;

  close(): void {
    this.closed = true;
  }

  /** Open the gate and release everyone waiting. */
  open(): void {
    if (!this.closed) return;
    this.closed = false;
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when the gate is open. */
  wait(): Promise<void> {
    return this.closed ? new Promise((resolve) => this.waiters.push(resolve)) : Promise.resolve();
  }
}
