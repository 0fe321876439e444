/**
 * Starting the stage from the command line, for stdin (src/cli.ts) and Redis (src/redis/redis-cli.ts)
 * alike: a stage that cannot start says why in one message (with the model's traceback when its code
 * raised) and the exit code tells whether the user can fix it (2) or the machine could not run it (1).
 */
import { InvalidOptionError, ModelLoadError, ResumeRefusedError } from '../api/errors.js';
import type { StageOptions } from '../api/options.js';
import { createStage, type Stage } from '../api/stage.js';

/** The started stage, or the exit code after its one-message failure on stderr. */
export async function startStage(options: StageOptions): Promise<Stage | number> {
  let stage: Stage;
  try {
    stage = await createStage(options);
  } catch (err) {
    // A model that cannot load (missing file, syntax error, wrong class, a raising constructor or init) and an
    // option that cannot work, and a state dir holding another job's resume point are the user's to fix, like bad usage; anything else is this machine's.
    const fixable = err instanceof ModelLoadError || err instanceof InvalidOptionError || err instanceof ResumeRefusedError;
    const traceback = (err as ModelLoadError).traceback;
    process.stderr.write(`pystage: the stage could not start: ${(err as Error).message}\n${traceback ? indent(traceback) : ''}`);
    return fixable ? 2 : 1;
  }
  // A port chosen by the system is of no use unless it is said; at the default log level too.
  if (options.metricsPort === 0) process.stderr.write(JSON.stringify({ metricsUrl: stage.metricsUrl }) + '\n');
  return stage;
}

function indent(text: string): string {
  return text.replace(/^(?=.)/gm, '  ').replace(/\n?$/, '\n');
}
