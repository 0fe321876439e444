/** Signals: a second SIGTERM exits at once, without finishing what was taken, and still no Python server outlives node. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startCli, summaryOf } from '../support/cli-runner.js';
import { waitGone } from '../support/processes.js';
import { fixtures } from '../support/paths.js';

test('a second SIGTERM exits at once; the servers are gone within 3 s', async () => {
  const { child, done } = startCli(['run', '--python-path', fixtures, '--model', `slow=${fixtures}slow_leaky.py`,
    '--model-options', 'slow={"delay":0.05}', '--partitions', '2', '--log-level', 'info']);
  let stderr = '';
  const pids: number[] = [];
  const ready = new Promise<void>((resolve) => child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
    for (const m of stderr.matchAll(/"serverPid":(\d+)[^\n]*"msg":"partition ready"/g)) {
      if (!pids.includes(Number(m[1]))) pids.push(Number(m[1]));
    }
    if (pids.length === 2) resolve();
  }));
  await ready;
  let input = '';
  for (let i = 0; i < 2000; i++) input += `{"key":"k${i}","seq":${i}}\n`;
  child.stdin!.write(input);
  await new Promise((r) => setTimeout(r, 500));
  child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 100));
  child.kill('SIGTERM');
  const result = await done;
  assert.equal(result.code, 143);
  // At once: before finishing the messages already taken (50 ms each), which the first signal alone waits for.
  const summary = summaryOf(result.stderr);
  assert.equal(summary.interrupted, true);
  assert.ok(summary.out < summary.in, `it finished all ${summary.in} messages it had taken before exiting`);
  assert.ok(await waitGone(pids, 3000), `servers ${pids} outlived the stage`);
});
