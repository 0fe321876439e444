/**
 * What the package's own modules may reach behind a `Stage`: its engine. Kept out of src/api/stage.ts so
 * that the public declarations never mention the engine (nor, through it, a dependency's types).
 */
import type { Stage } from '../api/stage.js';
import type { StageEngine } from './stage-engine.js';

const engines = new WeakMap<Stage, StageEngine>();

/** Called once by createStage. */
export function registerEngine(stage: Stage, engine: StageEngine): void {
  engines.set(stage, engine);
}

/** The engine behind a stage: its line path, for the CLI and the Redis runner. */
export function stageEngine(stage: Stage): StageEngine {
  const engine = engines.get(stage);
  if (engine === undefined) throw new TypeError('not a stage made by createStage');
  return engine;
}
