/**
 * The worker's side of the partition's state: it reads each request's state changes from its
 * reply (the `State` field: `[["key", value], ["key", value, expiresAt], ["deleted key"], …]`,
 * values as the server wrote them) and applies them once the reply's messages are sure to be
 * emitted (its outputs mapped and its files read), in reply order; it restores every new connection
 * from what it holds. A reply that never arrived, or could not be used, never changed it: that is
 * what makes a message re-executed after a crash see the state from before its first run.
 */
import { hasBackslash, splitArray, valueEnd } from '../../src/protocol/json-scan.js';
import { StateTable, type StateChanges } from '../../src/context/state-table.js';

const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const COMMA = 0x2c;

/** The state a partition worker owns, and the changes each reply brings. */
export class PartitionState {
  readonly table = new StateTable();

  /**
   * The State value at payload[start, end) of model's reply as changes in groups of four, without
   * applying them. Throws if the text is not a State array.
   */
  readReply(model: string, payload: Buffer, start: number, end: number): StateChanges {
    // Each entry takes at least 5 bytes (`["k"]`) and a comma: enough slots for every element.
    const spans = new Int32Array(2 * Math.ceil((end - start) / 5) + 2);
    const count = splitArray(payload, start, end, spans);
    if (count < 0) throw new Error('the reply\'s State is not an array of entries');
    const changes: StateChanges = [];
    for (let k = 0; k < count; k++) {
      // An entry is `["key",value]`, `["key",value,expiresAt]` or `["key"]` as the server's encoder writes it (compact).
      const s = spans[2 * k]!;
      const e = spans[2 * k + 1]!;
      const keyEnd = payload[s] === OPEN_BRACKET ? valueEnd(payload, s + 1, e) : -1;
      if (keyEnd < 0 || payload[s + 1] !== QUOTE || payload[e - 1] !== CLOSE_BRACKET) throw new Error('a State entry is not [key], [key, value] or [key, value, expiresAt]');
      const key = hasBackslash(payload, s + 2, keyEnd - 1)
        ? JSON.parse(payload.toString('utf8', s + 1, keyEnd)) as string
        : payload.toString('utf8', s + 2, keyEnd - 1);
      let text: string | null = null;
      let expiresAt: number | null = null;
      if (payload[keyEnd] === COMMA) {
        const textEnd = valueEnd(payload, keyEnd + 1, e - 1);
        if (textEnd < 0) throw new Error('a State entry\'s value is not JSON');
        text = payload.toString('utf8', keyEnd + 1, textEnd);
        if (textEnd < e - 1) {
          expiresAt = payload[textEnd] === COMMA ? Number(payload.toString('latin1', textEnd + 1, e - 1)) : Number.NaN;
          if (!Number.isSafeInteger(expiresAt)) throw new Error('a State entry\'s expiresAt is not an integer');
        }
      }
      changes.push(model, key, text, expiresAt);
    }
    return changes;
  }

  /** Apply changes read from replies (in reply order); returns them (for the main thread's mirror). */
  apply(changes: StateChanges): StateChanges {
    this.table.apply(changes);
    return changes;
  }
}
