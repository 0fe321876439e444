/**
 * The worker's side of the partition's state: it takes each request's state changes from its
 * reply (the `State` field: `[["key", value], ["deleted key"], …]`, values as the server wrote
 * them) the moment the reply arrives, in reply order, and restores every new connection from
 * what it holds. A reply that never arrived never changed it: that is what makes a message
 * re-executed after a crash see the state from before its first run.
 */
import { splitArray } from '../src/json-scan.js';
import { StateTable, type StateChanges } from '../src/state-table.js';

/** The state a partition worker owns, and the changes each reply brings. */
export class PartitionState {
  readonly table = new StateTable();

  /**
   * Apply the State value at payload[start, end) of model's reply; returns the changes as triples
   * (for the main thread's mirror). Throws if the text is not a State array.
   */
  applyReply(model: string, payload: Buffer, start: number, end: number): StateChanges {
    // Each entry takes at least 5 bytes (`["k"]`) and a comma: enough slots for every element.
    const spans = new Int32Array(2 * Math.ceil((end - start) / 5) + 2);
    const count = splitArray(payload, start, end, spans);
    if (count < 0) throw new Error('the reply\'s State is not an array of entries');
    const pair = new Int32Array(4);
    const changes: StateChanges = [];
    for (let k = 0; k < count; k++) {
      const n = splitArray(payload, spans[2 * k]!, spans[2 * k + 1]!, pair);
      if (n !== 1 && n !== 2) throw new Error('a State entry is not [key] or [key, value]');
      const key = JSON.parse(payload.toString('utf8', pair[0]!, pair[1]!)) as unknown;
      if (typeof key !== 'string') throw new Error('a State key is not a string');
      const text = n === 2 ? payload.toString('utf8', pair[2]!, pair[3]!) : null;
      this.table.set(model, key, text);
      changes.push(model, key, text);
    }
    return changes;
  }
}
