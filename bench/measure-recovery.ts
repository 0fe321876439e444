/**
 * Startup and restart times of the embedded API (inside a child node process):
 * createStage → ready, and SIGKILL of one server under load → that partition's next output.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { benchStage } from './measure-api.js';
import { PacedSource } from './paced-source.js';

export interface StartupResult {
  partitions: number;
  /** createStage → resolved, ms, one per stage started (each closed before the next). */
  samples: number[];
}

export interface RestartResult {
  partitions: number;
  /** SIGKILL → first output from that partition of a message pushed after the kill, ms. */
  samples: number[];
  messages: number;
  outputs: number;
  errors: number;
  /** Restarts the stage counted (should equal the kills). */
  restarts: number;
}

/** How long a killed partition may take to answer again before the run counts as failed. */
const RESTART_DEADLINE_MS = 15_000;

/** Start and close `samples` stages one after another, timing each start. */
export async function apiStartup(partitions: number, samples: number): Promise<StartupResult> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const started = performance.now();
    const stage = await benchStage(partitions);
    times.push(performance.now() - started);
    await stage.close();
  }
  return { partitions, samples: times };
}

/**
 * Under a steady offered load, SIGKILL partition k % partitions's server `kills` times, `gapMs` apart.
 * Only messages pushed after the kill count as "the next output": an output already on its way when
 * the server died would otherwise look like an instant recovery.
 */
export async function apiRestart(partitions: number, kills: number, rate: number, gapMs: number): Promise<RestartResult> {
  // The stage logs every broken connection at warn; the harness reports restarts itself.
  const stage = await benchStage(partitions, 'error');
  const source = new PacedSource(Math.ceil(rate * (kills * (gapMs + 2000) + 5000) / 1000), rate);
  // Typed by assertion: the consumer below is an IIFE, and TypeScript would narrow a plain `= null` to null inside it.
  let waiting = null as { partition: number; fromOffset: number; arrived: () => void } | null;
  let outputs = 0;
  let errors = 0;
  const consumed = (async () => {
    for await (const record of stage.process(source)) {
      if (record.kind !== 'output') {
        errors++;
        continue;
      }
      outputs++;
      if (waiting !== null && record.partition === waiting.partition && record.offset >= waiting.fromOffset) {
        waiting.arrived();
        waiting = null;
      }
    }
  })();
  await sleep(gapMs);
  const times: number[] = [];
  for (let k = 0; k < kills; k++) {
    const partition = k % partitions;
    const pid = (await stage.status())[partition]!.serverPid;
    if (pid === null) throw new Error(`partition ${partition} reports no server pid`);
    let deadline: NodeJS.Timeout | undefined;
    const arrived = new Promise<void>((resolve, reject) => {
      waiting = { partition, fromOffset: source.pushed, arrived: resolve };
      deadline = setTimeout(() => reject(new Error(`partition ${partition} produced no output within ${RESTART_DEADLINE_MS} ms of its server being killed`)), RESTART_DEADLINE_MS);
    });
    const killedAt = performance.now();
    process.kill(pid, 'SIGKILL');
    await arrived.finally(() => clearTimeout(deadline));
    times.push(performance.now() - killedAt);
    await sleep(gapMs);
  }
  source.stop();
  await consumed;
  const { restarts } = stage.stats();
  await stage.close();
  return { partitions, samples: times, messages: source.pushed, outputs, errors, restarts };
}
