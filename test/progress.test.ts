/** The CLI's progress line: JSON on stderr every interval with --progress, never on stdout; off by default when stderr is not a terminal. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jsonLines, runCli, summaryOf } from './support/cli-runner.js';
import { cliPath, fixtures, repoRoot } from './support/paths.js';
import { tempDir } from './support/temp-dirs.js';

const input = Array.from({ length: 300 }, (_, i) => JSON.stringify({ key: `k${i % 5}`, seq: i })).join('\n') + '\n';
const args = ['run', '--python-path', fixtures, '--model', `s=${fixtures}slow.py`, '--model-options', 's={"ms":5}', '--partitions', '2'];

test('--progress writes progress lines on stderr (counts, rate, restarts, per-partition queues), stdout holds outputs only', async () => {
  const result = await runCli([...args, '--progress', '--progress-interval', '200'], input);
  assert.equal(result.code, 0, result.stderr);
  assert.ok(!result.stderr.includes('\x1b'), 'into a pipe: JSON lines, no terminal control codes');
  const progress = result.stderr.split('\n').filter((l) => l.startsWith('{"progress"')).map((l) => JSON.parse(l).progress);
  assert.ok(progress.length >= 2, `expected several progress lines:\n${result.stderr}`);
  for (const p of progress) {
    for (const field of ['in', 'out', 'noOutput', 'errors', 'msgPerSec', 'restarts', 'seconds']) assert.equal(typeof p[field], 'number', field);
    assert.equal(p.queued.length, 2);
    assert.equal(p.inFlight.length, 2);
    assert.ok(p.out <= p.in && p.in <= 300);
  }
  // Counters only grow.
  for (let k = 1; k < progress.length; k++) assert.ok(progress[k].out >= progress[k - 1].out);
  const outputs = jsonLines(result.stdout);
  assert.equal(outputs.length, 300);
  assert.ok(outputs.every((o) => typeof o.offset === 'number' && o.model === 's'), 'only output lines on stdout');
  assert.equal(summaryOf(result.stderr).out, 300);
});

test('no progress lines when stderr is not a terminal and --progress is not given, or with --no-progress', async () => {
  for (const extra of [[], ['--no-progress', '--progress-interval', '100']]) {
    const result = await runCli([...args, ...extra], input);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(!result.stderr.includes('"progress"'), result.stderr);
  }
  const both = await runCli([...args, '--progress', '--no-progress'], input);
  assert.equal(both.code, 2);
});

/** Runs a command with stdin from a file, stdout discarded, stderr on a pseudo-terminal; prints what the terminal got. */
const ptyRunner = `
import os, pty, subprocess, sys
master, slave = pty.openpty()
with open(sys.argv[1], "rb") as stdin:
    proc = subprocess.Popen(sys.argv[2:], stdin=stdin, stdout=subprocess.DEVNULL, stderr=slave)
os.close(slave)
data = b""
while True:
    try:
        chunk = os.read(master, 65536)
    except OSError:
        break
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode("utf-8", "replace"))
sys.exit(proc.wait())
`;

test('on a terminal, by default: one human line rewritten in place (rate, counts, queue, restarts), no JSON; cleared before the summary', () => {
  const dir = tempDir('pystage-pty-');
  writeFileSync(join(dir, 'pty_runner.py'), ptyRunner);
  writeFileSync(join(dir, 'input.jsonl'), input);
  const result = spawnSync('python3', [join(dir, 'pty_runner.py'), join(dir, 'input.jsonl'), process.execPath, cliPath, ...args, '--progress-interval', '200'],
    { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
  assert.equal(result.status, 0, result.stdout + result.stderr);
  const screen = result.stdout;
  assert.ok(!screen.includes('"progress"'), screen);
  // Each report goes back to the start of the line and erases it (\r ESC[2K), never a newline of its own.
  const reports = screen.split('\r\x1b[2K').slice(1);
  const shown = reports.filter((r) => r.startsWith('pystage '));
  assert.ok(shown.length >= 2, JSON.stringify(screen));
  for (const line of shown) {
    assert.match(line, /^pystage \d+:\d\d {2}in [\d,]+ {2}out [\d,]+ {2}no output [\d,]+ {2}errors [\d,]+ {2}[\d,]+ msg\/s {2}queued [\d,]+ {2}in flight [\d,]+ {2}restarts \d+$/, JSON.stringify(line));
  }
  // Cleared at the end: the summary starts on a clean line.
  assert.match(reports[reports.length - 1]!, /^\{"summary":\{"in":300,/);
});
