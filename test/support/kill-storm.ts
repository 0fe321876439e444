/**
 * SIGKILL a stage's servers again and again while it runs, like a hostile operator, but never a
 * fresh server before it served: after each kill the storm waits until the stage counted the
 * restart, then `gapMs` more. Without that wait, on a loaded machine a server could be killed
 * twice while one message was alone in flight on it, and the stage would rightly call that
 * message a poison message, which is not what these tests are about.
 */
import type { Stage } from '../../src/index.js';
import { processesMatching } from './processes.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Start the storm; `stop()` ends it and resolves with the number of servers killed. */
export function killStorm(stage: Stage, gapMs: number, maxKills = 20): { stop(): Promise<number> } {
  let stopped = false;
  let kills = 0;
  const running = (async () => {
    while (!stopped && kills < maxKills) {
      await sleep(gapMs);
      const pids = processesMatching(`--uniq ${stage.id}.`);
      const victim = pids[kills % Math.max(1, pids.length)];
      if (victim === undefined || stopped) continue;
      const restarts = stage.stats().restarts;
      try {
        process.kill(victim, 'SIGKILL');
      } catch {
        continue; // already gone
      }
      kills++;
      while (!stopped && stage.stats().restarts === restarts) await sleep(10);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await running;
      return kills;
    },
  };
}
