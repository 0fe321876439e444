/**
 * Every way a Python server ends takes its whole process group with it: a model that starts
 * `sleep 1000` in its constructor leaves nothing behind (checked through /proc).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createStage, type StageRecord } from '../../src/index.js';
import { jsonLines, runCli, startCli } from '../support/cli-runner.js';
import { collect } from '../support/collect.js';
import { isAlive, waitGone } from '../support/processes.js';

const fixtures = fileURLToPath(new URL('../../../test/fixtures/models/', import.meta.url));
const spawnerArgs = ['run', '--python-path', fixtures, '--model', `spawn=${fixtures}spawner.py`, '--partitions', '1'];

interface Pids { child: number; server: number }

function pidsOf(records: StageRecord[]): Pids {
  const output = records.find((r) => r.kind === 'output');
  assert.ok(output && output.kind === 'output', `no output in ${JSON.stringify(records)}`);
  const { child, server } = output.output as unknown as Pids;
  return { child, server };
}

/** The pids in the first output line the CLI writes. */
function firstOutput(child: ChildProcess): Promise<Pids> {
  return new Promise((resolve) => {
    let text = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const line = text.split('\n').find((l) => l.startsWith('{'));
      if (line && text.includes('\n')) resolve((JSON.parse(line) as { output: Pids }).output);
    });
  });
}

describe('a model\'s subprocesses end with their server', () => {
  test('API: a server that crashed and was restarted, then stage.close()', async () => {
    const stage = await createStage({
      partitions: 1, pythonPath: fixtures, logLevel: 'silent', maxAttempts: 1,
      models: [{ name: 'spawn', file: 'spawner.py' }],
    });
    try {
      const first = pidsOf(await collect(stage.process([{ key: 'a' }])));
      assert.ok(isAlive(first.child), 'the model\'s helper runs');
      const crashed = await collect(stage.process([{ key: 'a', die: true }]));
      assert.equal(crashed[0]!.kind, 'error');
      const second = pidsOf(await collect(stage.process([{ key: 'a' }])));
      assert.notEqual(second.server, first.server, 'the server was restarted');
      assert.ok(await waitGone([first.server, first.child], 3000), `the crashed server's helper ${first.child} outlived it`);
      assert.ok(isAlive(second.child));
      await stage.close();
      assert.ok(await waitGone([second.server, second.child], 3000), `helper ${second.child} outlived stage.close()`);
    } finally {
      await stage.close();
    }
  });

  test('API: the partition\'s worker thread dies; its server\'s group goes, a new thread and server take over', async () => {
    const stage = await createStage({
      partitions: 1, pythonPath: fixtures, logLevel: 'silent',
      models: [{ name: 'spawn', file: 'spawner.py' }],
    });
    try {
      const first = pidsOf(await collect(stage.process([{ key: 'a' }])));
      assert.ok(isAlive(first.server) && isAlive(first.child));
      // A real thread death, as an uncaught error or an out-of-memory abort in the worker would cause:
      // the thread is terminated under Piscina, whose pool then starts a new one.
      const pool = (stage as unknown as { pools: { threads: { terminate(): Promise<number> }[] }[] }).pools[0]!;
      await pool.threads[0]!.terminate();
      const records = await collect(stage.process([{ key: 'a' }, { key: 'b' }]));
      assert.deepEqual(records.map((r) => r.kind), ['output', 'output'], JSON.stringify(records));
      const second = pidsOf(records);
      assert.notEqual(second.server, first.server, 'a new server serves the new thread');
      assert.ok(await waitGone([first.server, first.child], 3000), `the dead thread's server ${first.server} or its helper ${first.child} lives on`);
      await stage.close();
      assert.ok(await waitGone([second.server, second.child], 3000));
    } finally {
      await stage.close();
    }
  });

  test('CLI: the end of input stops the server with stopServer; its helper goes too', async () => {
    const result = await runCli(spawnerArgs, '{"key":"a"}\n');
    assert.equal(result.code, 0, result.stderr);
    const { child, server } = jsonLines(result.stdout)[0]!.output as Pids;
    assert.ok(await waitGone([server, child], 3000), `helper ${child} outlived a normal end`);
  });

  test('CLI: node killed with SIGKILL; the server\'s watchdog takes its group down', async () => {
    const { child, done } = startCli(spawnerArgs);
    child.stdin!.write('{"key":"a"}\n');
    const pids = await firstOutput(child);
    child.kill('SIGKILL');
    await done;
    assert.ok(await waitGone([pids.server, pids.child], 3000), `helper ${pids.child} outlived node's SIGKILL`);
  });

  test('CLI: a second SIGTERM while a message runs exits at once; the group goes too', async () => {
    const { child, done } = startCli(spawnerArgs);
    child.stdin!.write('{"key":"a"}\n');
    const pids = await firstOutput(child);
    child.stdin!.write('{"key":"a","sleep":60}\n');
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGTERM');
    const result = await done;
    assert.equal(result.code, 143, result.stderr);
    assert.ok(await waitGone([pids.server, pids.child], 3000), `helper ${pids.child} outlived the second signal`);
  });
});
