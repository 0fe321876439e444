/**
 * Opening a stage's state dir at start: refuse a store of another partition count (unless
 * repartitionState), fill each partition's table, and say how it goes while a large one restores.
 */
import { setImmediate as turn } from 'node:timers/promises';
import { ResumeRefusedError } from '../api/errors.js';
import { StateTable } from '../context/state-table.js';
import { fnv1a } from '../engine/partitioner.js';
import { DurableState } from './durable-state.js';
import { EmbeddedStateStore } from './embedded-state-store.js';
import type { Registry } from 'prom-client';
import type { ResolvedOptions } from '../api/options.js';
import type { StageLogger } from '../telemetry/stage-logger.js';
import { registerStateStoreMetrics } from '../telemetry/metrics.js';

/** How far a restore is (the CLI prints it as a progress line; `onRestoreProgress` in the API). */
export interface RestoreProgress {
  partition: number;
  /** Keys restored so far, over all partitions. */
  keys: number;
  seconds: number;
  done: boolean;
}

export interface Restored {
  durable: DurableState;
  tables: StateTable[];
  seconds: number;
  keys: number;
}

/** A stage's restore (StageEngine.start): the store opened, the tables filled, logged and measured. */
export async function openStageState(o: ResolvedOptions, logger: StageLogger, registry: Registry | null): Promise<Restored> {
  const dir = o.stateDir!;
  const restored = await restoreState(dir, { partitions: o.partitions, models: o.models.map((m) => m.name), repartition: o.repartitionState }, 1000, o.onRestoreProgress);
  const durable = restored.durable;
  durable.onError = (err) => logger.error({ stateDir: dir, err: (err as Error).message }, 'a checkpoint failed; the next one tries again');
  logger.info({ stateDir: dir, keys: restored.keys, seconds: restored.seconds }, 'state restored');
  if (registry !== null) registerStateStoreMetrics(registry, { restoreSeconds: restored.seconds, restoredKeys: restored.keys, checkpoints: () => durable.checkpoints });
  return restored;
}

/** Entries read between two looks at the clock (and two event-loop turns). */
const CHUNK = 50_000;

export async function restoreState(
  dir: string,
  job: { partitions: number; models: string[]; repartition: boolean },
  progressEveryMs: number,
  onProgress: ((p: RestoreProgress) => void) | null,
): Promise<Restored> {
  const started = performance.now();
  const store = EmbeddedStateStore.open(dir);
  try {
    const stored = store.partitions;
    if (stored !== null && stored !== job.partitions) {
      if (!job.repartition) {
        throw new ResumeRefusedError(`state dir ${dir} holds the state of ${stored} partitions, and this stage has ${job.partitions}: state belongs to a partition; pass --repartition-state (API: repartitionState) to move each key to the partition it hashes to, or run with --partitions ${stored}`);
      }
      const metas = store.metas();
      if (metas !== null && metas.some((m) => !m.finished)) {
        throw new ResumeRefusedError(`state dir ${dir} holds a cut-short run of ${stored} partitions: finish it with --partitions ${stored}, or pass --new-input with --repartition-state`);
      }
      await store.repartition(job.partitions, (key) => fnv1a(key) % job.partitions);
    }
    const metas = store.metas();
    const resume = metas !== null && metas.some((m) => !m.finished);
    const durable = new DurableState(store, { fingerprint: null, partitions: job.partitions, models: job.models }, {
      below: resume ? metas.map((m) => m.below) : new Array<number>(job.partitions).fill(0),
      rejectsBelow: resume ? metas[0]!.rejectsBelow : 0,
      seq: metas?.[0]?.seq ?? 0,
    });
    const tables: StateTable[] = [];
    const now = Date.now();
    let keys = 0;
    let lastReport = started;
    for (let p = 0; p < job.partitions; p++) {
      const table = new StateTable();
      tables.push(table);
      const expired = new Map<string, string[]>();
      let n = 0;
      for (const entry of store.entries(p)) {
        if (entry.expiresAt !== null && entry.expiresAt <= now) {
          let list = expired.get(entry.model);
          if (list === undefined) expired.set(entry.model, (list = []));
          list.push(entry.key);
        } else {
          table.set(entry.model, entry.key, entry.text);
          keys++;
        }
        if (++n % CHUNK === 0) {
          const at = performance.now();
          if (onProgress !== null && at - lastReport >= progressEveryMs) {
            lastReport = at;
            onProgress({ partition: p, keys, seconds: (at - started) / 1000, done: false });
          }
          await turn();
        }
      }
      // Expired while stored: gone from memory now, and from the store at the next checkpoint.
      for (const [model, list] of expired) durable.deleted(p, model, list);
    }
    const seconds = (performance.now() - started) / 1000;
    onProgress?.({ partition: job.partitions - 1, keys, seconds, done: true });
    return { durable, tables, seconds, keys };
  } catch (err) {
    await store.close();
    throw err;
  }
}
