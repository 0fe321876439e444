/** Runs one ChildTask in a fresh node process, measured from outside (CPU, peak RSS). */
import type { ChildTask } from './child-task.js';
import { assertSucceeded, runMeasured, type MeasuredRun } from './measured-process.js';
import { childScript, repoRoot } from './paths.js';

/** The child's result (its last stdout line) and the outside measurements of its process tree (RSS only if `sampleTree`). */
export async function runChild<T>(task: ChildTask, sampleTree = true): Promise<{ result: T; run: MeasuredRun }> {
  const run = await runMeasured(process.execPath, [childScript, JSON.stringify(task)], { cwd: repoRoot, sampleTree });
  assertSucceeded(`bench child ${task.kind}`, run);
  const last = run.stdout.trim().split('\n').pop() ?? '';
  try {
    return { result: JSON.parse(last) as T, run };
  } catch {
    throw new Error(`bench child ${task.kind} printed no result line; stdout tail: ${run.stdout.slice(-500)}`);
  }
}
