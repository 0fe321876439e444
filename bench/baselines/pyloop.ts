/** Baseline A, measured: pyloop.py with the input file as stdin and an output file as stdout. */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { countLines } from '../line-count.js';
import { assertSucceeded, runMeasured } from '../measured-process.js';
import { baselinesDir, modelClass, modelFile, pyRoot, python, repoRoot } from '../paths.js';
import { sample, treeFigures, type RunSample } from '../run-sample.js';
import { checkFirstOutput, plainOutput } from '../spot-check.js';

/** Run the in-process Python loop over `inputPath` (holding `messages` lines); wall time includes interpreter start. */
export async function measurePyloop(inputPath: string, messages: number, workDir: string): Promise<RunSample> {
  const outputPath = join(workDir, 'pyloop-out.jsonl');
  const run = await runMeasured(python(), [
    join(baselinesDir, 'pyloop.py'), '--model-file', modelFile, '--class', modelClass, '--py-root', pyRoot,
  ], { cwd: repoRoot, stdinFile: inputPath, stdoutFile: outputPath });
  assertSucceeded('pyloop', run);
  const outputs = countLines(outputPath);
  checkFirstOutput('pyloop', outputPath, plainOutput);
  rmSync(outputPath);
  return sample('A pyloop', messages, outputs, run.seconds, { ...treeFigures(run), nodeMb: null });
}
