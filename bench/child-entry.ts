/**
 * Entry point of a child node process that runs one in-process measurement and prints its
 * result as one JSON line on stdout: `node dist/bench/child-entry.js '<ChildTask JSON>'`.
 * A fresh process per measurement keeps heaps, JIT state and RSS of one run out of the next.
 */
import { runLockstep } from './baselines/lockstep.js';
import { runPythonShell } from './baselines/python-shell.js';
import type { ChildTask } from './child-task.js';
import { apiLatency, apiThroughput } from './measure-api.js';
import { apiRestart, apiStartup } from './measure-recovery.js';

function run(task: ChildTask): Promise<unknown> {
  switch (task.kind) {
    case 'api-throughput': return apiThroughput(task.messages, task.partitions);
    case 'api-latency': return apiLatency(task.messages, task.rate, task.warmup, task.partitions);
    case 'api-startup': return apiStartup(task.partitions, task.samples);
    case 'api-restart': return apiRestart(task.partitions, task.kills, task.rate, task.gapMs);
    case 'python-shell': return runPythonShell(task.messages);
    case 'lockstep': return runLockstep(task.messages, task.inputPath);
  }
}

run(JSON.parse(process.argv[2]!) as ChildTask).then((result) => {
  process.stdout.write(JSON.stringify(result) + '\n');
}, (err: unknown) => {
  process.stderr.write(`bench child failed: ${(err as Error).stack ?? String(err)}\n`);
  // Exit now: a failed measurement may leave a stage running, whose exit hook then kills its servers.
  process.exit(1);
});
