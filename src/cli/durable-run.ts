/**
 * Before a CLI run with --state-dir: is there a resume point, and is this the job it belongs to?
 *
 * A checkpoint of a run that did not finish its input is a resume point. Running the same command
 * again (same input file beginning, partition count and model names) resumes it: the --output and
 * --errors files are cut back to their lengths at the checkpoint, and input lines the checkpoint
 * reflects are skipped (per partition: each partition's own position, see RunSkip). Anything else
 * is refused with what differs, unless --reset-state (start over empty) or --new-input (keep the
 * state, take the input as new). A pipe cannot be resumed: the state is kept, the input is new, and
 * a warning names the offset the cut-short run's checkpoint stands at.
 */
import { existsSync, statSync, truncateSync, fstatSync } from 'node:fs';
import { ResumeRefusedError } from '../api/errors.js';
import { fingerprintOf, jobDifferences, lowWater, type CheckpointMeta } from '../state/checkpoint-meta.js';
import { EmbeddedStateStore } from '../state/embedded-state-store.js';
import type { RunSkip } from '../engine/stage-run.js';
import type { StageEngine } from '../engine/stage-engine.js';
import type { Batch } from '../engine/batch.js';
import type { Writable } from 'node:stream';
import type { FileLengths } from '../state/durable-state.js';
import type { LineWriter } from './line-writer.js';
import type { SyncFileStream } from './sync-file-stream.js';

export interface DurableRunRequest {
  dir: string;
  partitions: number;
  models: string[];
  /** --input FILE, or null for stdin. */
  inputFile: string | null;
  outputFile: string | null;
  errorsFile: string | null;
  reset: boolean;
  newInput: boolean;
}

export interface DurablePlan {
  /** Lines to leave out: null for an input taken as new. */
  resume: (RunSkip & { lowWater: number }) | null;
  /** Lengths the --output / --errors files were cut back to (null: write them afresh). */
  outputBytes: number | null;
  errorBytes: number | null;
  fingerprint: string | null;
  /** Said on stderr before the run (a pipe after a cut-short run). */
  warning: string | null;
}

/** Decide how this run starts on its state dir; throws ResumeRefusedError (exit 2) or StateStoreError (exit 1). */
export async function planDurableRun(req: DurableRunRequest): Promise<DurablePlan> {
  const fingerprint = inputFingerprint(req.inputFile);
  const fresh: DurablePlan = { resume: null, outputBytes: null, errorBytes: null, fingerprint, warning: null };
  if (!existsSync(req.dir)) return fresh;
  const store = EmbeddedStateStore.open(req.dir);
  try {
    if (req.reset) {
      await store.reset();
      return fresh;
    }
    const metas = store.metas();
    if (metas === null || metas.every((m) => m.finished)) return fresh;
    const low = lowWater(metas);
    if (req.newInput) {
      await markFinished(store, metas);
      return fresh;
    }
    if (fingerprint === null) {
      await markFinished(store, metas);
      const high = Math.max(...metas.map((m) => Math.max(m.below, m.rejectsBelow)));
      const partly = high > low ? `; lines from ${low} up to ${high} are reflected for some partitions only` : '';
      return {
        ...fresh,
        warning: `pystage: the state in ${req.dir} is restored, but the input is a pipe, so it is taken as new: the cut-short run's last checkpoint stands at input offset ${low} (every line before it is reflected${partly}); resume the producer there`,
      };
    }
    const differs = jobDifferences(metas[0]!.job, { fingerprint, partitions: req.partitions, models: req.models });
    if (differs.length > 0) {
      throw new ResumeRefusedError(`state dir ${req.dir} holds the resume point of a cut-short run of another job: ${differs.join('; ')}. Run the same command to resume it, pass --new-input to keep the state and take this input as new, or --reset-state to start over empty`);
    }
    const meta = metas[0]!;
    const outputBytes = cutBack(req.outputFile, meta.outputBytes, '--output');
    const errorBytes = cutBack(req.errorsFile, meta.errorBytes, '--errors');
    return { ...fresh, resume: { below: metas.map((m) => m.below), rejectsBelow: meta.rejectsBelow, lowWater: low }, outputBytes, errorBytes };
  } finally {
    await store.close();
  }
}

/** The input's fingerprint when it is a regular file (--input FILE, or stdin redirected from one). */
function inputFingerprint(inputFile: string | null): string | null {
  if (inputFile !== null) return fingerprintOf(inputFile);
  try {
    return fstatSync(0).isFile() ? fingerprintOf(0) : null;
  } catch {
    return null;
  }
}

/** Cut a file back to its checkpoint length; refused when it is shorter (changed since). */
function cutBack(file: string | null, bytes: number | null, flag: string): number | null {
  if (file === null || bytes === null) return null;
  const size = existsSync(file) ? statSync(file).size : -1;
  if (size < bytes) {
    throw new ResumeRefusedError(`the ${flag} file ${file} holds ${Math.max(size, 0)} bytes, fewer than the ${bytes} its checkpoint recorded: it was changed since; pass --reset-state to start over, or --new-input`);
  }
  truncateSync(file, bytes);
  return bytes;
}

/** The input is new from here: the same positions, marked finished, and nothing else changed. */
async function markFinished(store: EmbeddedStateStore, metas: CheckpointMeta[]): Promise<void> {
  await store.commit(metas.map((meta, unit) => ({ unit, changes: [], meta: { ...meta, finished: true } })));
}

/** The CLI's writers and the streams under them. */
export interface RunWriters { out: LineWriter; outStream: Writable; errors: LineWriter; errorsStream: Writable }

/** What the CLI calls on its durable state while it runs. */
export interface DurableRun {
  consumed(batch: Batch): void;
  checkpoints(): number;
  /** The last checkpoint, after both writers ended; `finished` when the whole input was read. */
  final(finished: boolean): Promise<void>;
}

/**
 * Tie the engine's durable state to this run: the plan's positions, the input's fingerprint, and the files'
 * lengths. A checkpoint records a file's length only when every byte handed to it is written (the writers
 * are flushed first; a file stream writes synchronously), so the length always matches what was consumed.
 */
export function attachDurable(engine: StageEngine, plan: DurablePlan, w: RunWriters): DurableRun {
  const durable = engine.durable!;
  engine.resumeSkip = plan.resume ?? { below: new Array<number>(engine.partitions).fill(0), rejectsBelow: 0 };
  durable.fingerprint = plan.fingerprint;
  durable.resumable = true;
  const outFile = isFile(w.outStream) ? w.outStream : null;
  const errorsFile = isFile(w.errorsStream) ? w.errorsStream : null;
  const lengths = (): FileLengths => ({
    outputBytes: outFile === null ? null : (plan.outputBytes ?? 0) + outFile.written,
    errorBytes: errorsFile === null ? null : (plan.errorBytes ?? 0) + errorsFile.written,
  });
  durable.files = () => {
    w.out.flush();
    w.errors.flush();
    if ((outFile !== null && outFile.written !== w.out.handed) || (errorsFile !== null && errorsFile.written !== w.errors.handed)) return null;
    return lengths();
  };
  return {
    consumed: (batch) => durable.consumed(batch),
    checkpoints: () => durable.checkpoints,
    final: async (finished) => {
      try {
        await durable.checkpoint(lengths(), finished, true);
      } finally {
        await durable.close();
      }
    },
  };
}

function isFile(stream: Writable): stream is SyncFileStream {
  return typeof (stream as Partial<SyncFileStream>).written === 'number';
}
