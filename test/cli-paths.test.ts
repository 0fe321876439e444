/**
 * One rule for every path typed on the CLI: relative to the current directory (or absolute).
 * Models in two directories, an init file beside neither, a model outside the python path: all load,
 * through a real server whose confinement roots come from those paths.
 */
import assert from 'node:assert/strict';
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { jsonLines, runCli } from './support/cli-runner.js';
import { tempDir } from './support/temp-dirs.js';

const root = realpathSync(tempDir('pystage-paths-'));
for (const dir of ['a', 'b', 'data', 'work/mymodels']) mkdirSync(join(root, dir), { recursive: true });
writeFileSync(join(root, 'a', 'helper_a.py'), 'OFFSET = 100\n');
writeFileSync(join(root, 'a', 'm1.py'), [
  'import helper_a', '', '', 'class M1:', '    def __init__(self, options):', '        pass', '',
  '    def execute(self, msg):', '        return {"m1": msg["x"] + helper_a.OFFSET}', '',
].join('\n'));
writeFileSync(join(root, 'b', 'm2.py'), [
  'import json', '', '', 'class M2:', '    def __init__(self, options):', '        self.data = None', '',
  '    def init(self, path):', '        with open(path) as f:', '            self.data = json.load(f)', '',
  '    def execute(self, msg):', '        return {"m2": msg["x"], "data": self.data}', '',
].join('\n'));
writeFileSync(join(root, 'data', 'x.json'), '{"loaded": true}');
const cwd = join(root, 'work');
const input = '{"key":"k","x":1}\n{"key":"j","x":2}\n';

test('relative paths from the current directory, absolute paths, models in two directories, an init file in a third', async () => {
  const result = await runCli([
    'run', '--model', 'm1=../a/m1.py', '--model', `m2=${root}/b/m2.py`, '--init', 'm2=../data/x.json', '--partitions', '2',
  ], input, { cwd });
  assert.equal(result.code, 0, result.stderr);
  const outputs = jsonLines(result.stdout).sort((p, q) => p.offset - q.offset || p.model.localeCompare(q.model));
  assert.deepEqual(outputs.map((o) => [o.offset, o.model, o.output]), [
    [0, 'm1', { m1: 101 }], [0, 'm2', { m2: 1, data: { loaded: true } }],
    [1, 'm1', { m1: 102 }], [1, 'm2', { m2: 2, data: { loaded: true } }],
  ]);
});

test('an explicit --python-path (relative) for imports; a model outside it still loads from its own folder', async () => {
  const result = await runCli(['run', '--python-path', '../a', '--model', 'm1=../a/m1.py', '--model', 'm2=../b/m2.py', '--partitions', '1'], input, { cwd });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(jsonLines(result.stdout).length, 4);
});

test('a missing model file is reported at the path the user meant, not a doubled one', async () => {
  const result = await runCli(['run', '--model', 's=mymodels/nope.py', '--partitions', '1'], input, { cwd });
  assert.equal(result.code, 2);
  assert.ok(result.stderr.includes(join(cwd, 'mymodels', 'nope.py')), result.stderr);
  assert.ok(!result.stderr.includes('mymodels/mymodels'), result.stderr);
});

test('--help states the rule', async () => {
  const help = await runCli(['--help']);
  assert.match(help.stdout, /relative to the current directory/);
});
