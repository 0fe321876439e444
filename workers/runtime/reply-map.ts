/**
 * From the server's replies to a batch's Outcomes (src/engine/batch.ts): outputs stay the bytes the
 * server sent, gathered into one buffer that is transferred to the main thread; errors become
 * ErrorRecords. This is the only place that knows what a reply code means for a message.
 */
import { ERROR_BASE, NO_OUTPUT, type Outcomes } from '../../src/engine/batch.js';
import {
  BadInputError, BadRequestError, ModelExecutionError, ModelLoadError, type ErrorRecord, type PystageError,
} from '../../src/api/errors.js';
import { isNull } from '../../src/protocol/json-scan.js';
import { ReplyCode, type ReplyError } from '../../src/protocol/index.js';
import type { StateChanges } from '../../src/context/state-table.js';

/** The outcomes of one exec task as they arrive, in any order; `finish` packs them. */
export class OutcomeTable {
  private readonly table: Int32Array;
  private readonly pieces: Uint8Array[] = [];
  private bytes = 0;
  private readonly errors: ErrorRecord[] = [];
  private state: StateChanges | null = null;

  constructor(private readonly models: string[], private readonly width: number, count: number) {
    // Every slot is set before finish(), which copies the table next to the outputs.
    this.table = new Int32Array(count * width * 2);
  }

  /** Keep `bytes` for the main thread; returns where they start in the final buffer. */
  addPiece(bytes: Uint8Array): number {
    const base = this.bytes;
    this.pieces.push(bytes);
    this.bytes += bytes.length;
    return base;
  }

  output(slot: number, start: number, end: number): void {
    this.table[2 * slot] = start;
    this.table[2 * slot + 1] = end;
  }

  noOutput(slot: number): void {
    this.table[2 * slot] = NO_OUTPUT;
  }

  error(slot: number, error: ErrorRecord): void {
    this.table[2 * slot] = ERROR_BASE - this.errors.length;
    this.errors.push(error);
  }

  /** Keep the state changes of one reply, for the main thread's mirror. */
  stateChanges(changes: StateChanges): void {
    if (changes.length === 0) return;
    if (this.state === null) this.state = changes;
    else for (const c of changes) this.state.push(c);
  }

  /**
   * The packed Outcomes: `data` and `table` are views of one ArrayBuffer of their own (allocUnsafeSlow,
   * never pooled), so the reply transfers one buffer: each is a fresh external allocation for V8.
   */
  finish(): Outcomes {
    const tableAt = (this.bytes + 3) & ~3;
    const memory = Buffer.allocUnsafeSlow(tableAt + this.table.byteLength);
    let at = 0;
    for (const piece of this.pieces) {
      memory.set(piece, at);
      at += piece.length;
    }
    const table = new Int32Array(memory.buffer, tableAt, this.table.length);
    table.set(this.table);
    const outcomes: Outcomes = { models: this.models, width: this.width, table, data: memory.subarray(0, this.bytes), errors: this.errors };
    if (this.state !== null) outcomes.state = this.state;
    return outcomes;
  }
}

/** One message's output span in a payload: an output, or none for the literal `null`. */
export function mapOutput(table: OutcomeTable, slot: number, payload: Uint8Array, base: number, start: number, end: number): void {
  if (isNull(payload, start, end)) table.noOutput(slot);
  else table.output(slot, base + start, base + end);
}

/** The ErrorRecord of one failed message (an Errors entry of a lean reply, or an executeModel reply). */
export function itemError(code: number, error: ReplyError | undefined, partition: number, model: string): ErrorRecord {
  return replyError(code, error, partition, model, 'execute').toRecord();
}

/**
 * The typed error of a reply with a negative code. `what` is the command (or `execute` for a
 * message); `file` names the model file for load errors.
 */
export function replyError(code: number, error: ReplyError | undefined, partition: number, model: string | undefined, what: string, file?: string): PystageError {
  const type = error?.Type;
  const message = error?.Message ?? `server answered Code ${code}`;
  const details = { type, traceback: error?.Traceback ?? null, partition, model };
  const executing = what === 'execute' || what === 'executeBatch' || what === 'executeModel';
  if (executing && code === ReplyCode.MODEL_ERROR) return new ModelExecutionError(message, details);
  if (executing && type === 'BadInput') return new BadInputError(message, details);
  if (!executing && model !== undefined && (code === ReplyCode.BAD_REQUEST || code === ReplyCode.MODEL_ERROR)) {
    const where = file === undefined ? '' : ` (${file})`;
    return new ModelLoadError(`${what} "${model}"${where} failed: ${type ? `${type}: ` : ''}${message}`, details);
  }
  return new BadRequestError(`${what} failed (Code ${code}): ${type ? `${type}: ` : ''}${message}`, details);
}
