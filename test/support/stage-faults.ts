/** A running stage seen from outside, to hurt it and to check it cleaned up: its Python servers' pids, its worker threads. */
import assert from 'node:assert/strict';
import type { Stage } from '../../src/index.js';
import { stageEngine } from '../../src/engine/stage-internals.js';
import { processesMatching, waitGone } from './processes.js';

/** Pids of the stage's live Python servers (each one runs with `--uniq <stage id>.<n>`). */
export function serverPids(stage: Stage): number[] {
  return processesMatching(`--uniq ${stage.id}.`);
}

/** A worker thread as Piscina holds it; terminating it is a real thread death, like an uncaught error would cause. */
export interface WorkerThread {
  terminate(): Promise<number>;
}

/** The threads of each partition's pool, reached through the engine's private `pools`, partition by partition. */
export function workerThreads(stage: Stage): WorkerThread[][] {
  return (stageEngine(stage) as unknown as { pools: { threads: WorkerThread[] }[] }).pools.map((pool) => pool.threads);
}

/** Close the stage and assert that every server it ran is gone within 3 s, and none is running. */
export async function closeLeavingNoServer(stage: Stage): Promise<void> {
  const pids = serverPids(stage);
  await stage.close();
  assert.ok(await waitGone(pids, 3000), `servers ${pids} outlived stage.close()`);
  assert.deepEqual(serverPids(stage), []);
}
