/**
 * What a completed batch came to, counted in one pass of `visitOutcomes` (the one reader of the
 * Outcomes table, src/engine/batch.ts): totals for the stage's stats, and per model the outputs,
 * the "no output"s and the errors by code for the metrics, so these update one counter per model
 * and batch instead of decoding the table again.
 */
import { visitOutcomes, type Batch, type OutcomeVisitor } from './batch.js';
import type { ErrorRecord } from '../api/errors.js';

/** One model's outcomes in a batch. */
export interface ModelTally {
  outputs: number;
  noOutputs: number;
  /** Errors by their code. */
  errors: Map<string, number>;
}

/** The outcomes of one batch: totals, and per model (a failure before any model ran counts under ''). */
export class OutcomeTally implements OutcomeVisitor {
  outputs = 0;
  noOutputs = 0;
  errors = 0;
  readonly models = new Map<string, ModelTally>();
  private last: { model: string | null; tally: ModelTally | null } = { model: null, tally: null };

  /** Count every outcome of a completed batch. */
  static of(batch: Batch): OutcomeTally {
    const tally = new OutcomeTally();
    visitOutcomes(batch, 0, batch.count, tally);
    return tally;
  }

  output(_batch: Batch, _i: number, model: string): void {
    this.outputs++;
    this.model(model).outputs++;
  }

  noOutput(_batch: Batch, _i: number, model: string): void {
    this.noOutputs++;
    this.model(model).noOutputs++;
  }

  error(_batch: Batch, _i: number, model: string | null, error: ErrorRecord): void {
    this.errors++;
    const errors = this.model(model ?? '').errors;
    errors.set(error.code, (errors.get(error.code) ?? 0) + 1);
  }

  /** The model's tally; consecutive outcomes are mostly the same model's, so the last one is kept at hand. */
  private model(model: string): ModelTally {
    if (this.last.model === model) return this.last.tally!;
    let tally = this.models.get(model);
    if (tally === undefined) this.models.set(model, tally = { outputs: 0, noOutputs: 0, errors: new Map() });
    this.last = { model, tally };
    return tally;
  }
}
