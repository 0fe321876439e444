/**
 * `pystage run` end to end, measured from outside: stdin from the input file, stdout to a file,
 * wall time from spawn to exit (node start, stage start, the stream, close: what a CLI user waits).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { countLines } from './line-count.js';
import { assertSucceeded, runMeasured } from './measured-process.js';
import { cliScript, modelFile, modelName, python, repoRoot } from './paths.js';
import { sample, treeFigures, type RunSample } from './run-sample.js';
import { checkFirstOutput, cliOutput } from './spot-check.js';

/** The CLI's stderr summary line. */
interface CliSummary {
  in: number;
  out: number;
  errors: number;
}

/** Run the CLI over `inputPath` (`messages` lines) with `partitions` (null: the CLI's default). */
export async function measureCli(label: string, inputPath: string, messages: number, partitions: number | null, workDir: string): Promise<RunSample> {
  const outputPath = join(workDir, 'cli-out.jsonl');
  const args = [cliScript, 'run', '--model', `${modelName}=${modelFile}`, '--python', python()];
  if (partitions !== null) args.push('--partitions', String(partitions));
  const run = await runMeasured(process.execPath, args, { cwd: repoRoot, stdinFile: inputPath, stdoutFile: outputPath });
  assertSucceeded(label, run);
  const summary = summaryOf(label, run.stderr);
  if (summary.in !== messages || summary.errors !== 0) {
    throw new Error(`${label}: the CLI read ${summary.in} of ${messages} messages and reported ${summary.errors} errors`);
  }
  const outputs = countLines(outputPath);
  checkFirstOutput(label, outputPath, cliOutput);
  rmSync(outputPath);
  return sample(label, messages, outputs, run.seconds, treeFigures(run));
}

function summaryOf(label: string, stderr: string): CliSummary {
  const line = stderr.split('\n').reverse().find((l) => l.startsWith('{"summary"'));
  if (line === undefined) throw new Error(`${label}: no summary line on stderr:\n${stderr.slice(-2000)}`);
  return (JSON.parse(line) as { summary: CliSummary }).summary;
}
