/**
 * Replies are used one at a time, in the order they arrived. Using a reply may wait (reading its
 * output files), and its state changes are applied only once it was used, so the state changes of
 * a later reply never land before an earlier one's. A reply that cannot be used (its file is gone,
 * it cannot be mapped) voids every reply after it: they ran on a server that already had the
 * unusable one's state writes, so they must run again once the server is restored without them.
 */
import type { Operation } from './exec-plan.js';

interface Arrived {
  operation: Operation;
  payload: Buffer;
}

export class ReplyOrder {
  private readonly arrived: Arrived[] = [];
  private idleWaiters: (() => void)[] = [];

  /**
   * `unusable(operation, err, voided)`: the operation's reply could not be used; `voided` are the
   * operations answered after it, in order, whose replies were dropped unused.
   */
  constructor(private readonly unusable: (operation: Operation, err: Error, voided: Operation[]) => void) {}

  /** A reply arrived for `operation` (answered on the wire): use it once every earlier one was. */
  push(operation: Operation, payload: Buffer): void {
    this.arrived.push({ operation, payload });
    if (this.arrived.length === 1) this.useQueued();
  }

  /** Resolves once every reply that arrived so far was used (or voided). */
  idle(): Promise<void> {
    if (this.arrived.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private useQueued(): void {
    while (this.arrived.length > 0) {
      const { operation, payload } = this.arrived[0]!;
      let used: void | Promise<void>;
      try {
        used = operation.settle(payload);
      } catch (err) {
        this.fail(err as Error);
        continue;
      }
      if (used instanceof Promise) {
        used.then(() => {
          this.arrived.shift();
          this.useQueued();
        }, (err: unknown) => {
          this.fail(err as Error);
          this.useQueued();
        });
        return;
      }
      this.arrived.shift();
    }
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private fail(err: Error): void {
    const { operation } = this.arrived.shift()!;
    const voided = this.arrived.splice(0).map((a) => a.operation);
    this.unusable(operation, err, voided);
  }
}
