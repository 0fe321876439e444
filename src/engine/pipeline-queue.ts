/**
 * The FIFO of a pipelined conversation, where answers come back in the order requests left.
 * Three owners, two uses: the lane's tasks (src/engine/partition-lane.ts) and the connection's
 * requests (workers/server/server-connection.ts) are marked sent as they are pushed, so they use
 * the running half only (push, markSent, first, answer, drain); the runtime's operations
 * (workers/runtime/partition-runtime.ts) also wait unsent while the server is down, so it alone
 * uses the not-sent half (nextPending, removePending, unshift, unsendAll, dropFirst).
 *
 *   | answered (dropped) | running (sent, unanswered) | pending (not sent yet) |
 *   0                  head                       sentEnd                  items.length
 *
 * Every count is derived from the three indices. Only the head may be answered: a reply to
 * anything else means the conversation is out of step, which the owner must treat as a break.
 */
import assert from 'node:assert';

export class PipelineQueue<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  private sentEnd = 0;

  /** Sent and not yet answered. */
  get running(): number {
    return this.sentEnd - this.head;
  }

  /** Queued and not yet sent. */
  get pending(): number {
    return this.items.length - this.sentEnd;
  }

  /** Running plus pending. */
  get size(): number {
    return this.items.length - this.head;
  }

  /** The oldest unanswered item (running if anything is running). */
  first(): T | undefined {
    return this.items[this.head];
  }

  /** The next item to send, without taking it. */
  nextPending(): T | undefined {
    return this.items[this.sentEnd];
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** Put items before everything pending (e.g. the single-message halves of a split batch at the head). */
  unshift(...items: T[]): void {
    assert(this.running === 0, 'unshift only while nothing runs');
    this.items.splice(this.head, 0, ...items);
  }

  /** Mark the next pending item as sent and return it. Call after the send succeeded. */
  markSent(): T {
    assert(this.pending > 0, 'nothing pending to send');
    return this.items[this.sentEnd++]!;
  }

  /** Remove the next pending item without sending it (it could not be sent). */
  removePending(): T {
    assert(this.pending > 0, 'nothing pending to remove');
    return this.items.splice(this.sentEnd, 1)[0]!;
  }

  /** Take the head as answered; `item`, when given, must be it. */
  answer(item?: T): T {
    assert(this.running > 0, 'an answer with nothing running');
    const head = this.items[this.head]!;
    assert(item === undefined || item === head, 'only the head may be answered');
    this.items[this.head++] = undefined;
    this.compact();
    return head;
  }

  /** Remove the head without it being answered (given up). Works whether it ran or not. */
  dropFirst(): T {
    assert(this.size > 0, 'nothing to drop');
    const head = this.items[this.head]!;
    if (this.sentEnd === this.head) this.sentEnd++;
    this.items[this.head++] = undefined;
    this.compact();
    return head;
  }

  /** The conversation broke: everything running is pending again. Returns how many were running. */
  unsendAll(): number {
    const running = this.running;
    this.sentEnd = this.head;
    return running;
  }

  /** The i-th unanswered item (0 = head). */
  at(i: number): T | undefined {
    return this.items[this.head + i];
  }

  /** Remove and return every unanswered item. */
  drain(): T[] {
    const all = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    this.sentEnd = 0;
    return all;
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head);
      this.sentEnd -= this.head;
      this.head = 0;
    }
  }
}
