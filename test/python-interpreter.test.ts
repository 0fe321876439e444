/**
 * The user's Python: `--python VENV/bin/python` runs the venv (its site-packages), and the probe of a
 * wrapper interpreter cannot be broken by a `json.py` in the current directory.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { jsonLines, modelsDir, runCli } from './support/cli-runner.js';

const made: string[] = [];
after(() => { for (const dir of made) rmSync(dir, { recursive: true, force: true }); });

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** The real interpreter behind `python3` (a pyenv shim or a link), asked from a neutral directory. */
function realPython(): string {
  return execFileSync('python3', ['-I', '-c', 'import sys; print(sys.executable)'], { cwd: tmpdir(), encoding: 'utf8' }).trim();
}

test('--python VENV/bin/python runs the venv: a model imports a module only its site-packages has', async () => {
  const venv = join(tempDir('pystage-venv-test-'), 'venv');
  execFileSync(realPython(), ['-m', 'venv', '--without-pip', venv]);
  const python = join(venv, 'bin', 'python');
  const sitePackages = execFileSync(python, ['-I', '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], { encoding: 'utf8' }).trim();
  assert.ok(sitePackages.startsWith(venv), `the venv's own site-packages: ${sitePackages}`);
  writeFileSync(join(sitePackages, 'venv_only_helper.py'), 'GREETING = "hello from the venv"\n');
  const models = tempDir('pystage-venv-models-');
  writeFileSync(join(models, 'uses_venv.py'), [
    'import sys',
    'import venv_only_helper',
    'class UsesVenv:',
    '    def __init__(self, options):',
    '        pass',
    '    def execute(self, msg):',
    '        return {"greeting": venv_only_helper.GREETING, "prefix": sys.prefix}',
    '',
  ].join('\n'));
  const result = await runCli(['run', '--python', python, '--python-path', models, '--model', `v=${join(models, 'uses_venv.py')}`, '--partitions', '1'],
    '{"key":"a"}\n');
  assert.equal(result.code, 0, result.stderr);
  const [line] = jsonLines(result.stdout);
  assert.deepEqual(line!.output, { greeting: 'hello from the venv', prefix: venv });
});

test('a json.py in the current directory does not break the probe of a wrapper interpreter', async () => {
  const cwd = tempDir('pystage-cwd-test-');
  writeFileSync(join(cwd, 'json.py'), 'raise SystemExit("a json.py in the current directory was imported")\n');
  // A script, not a binary: pystage asks it for the real interpreter (the probe), as with a pyenv shim.
  const wrapper = join(cwd, 'python-wrapper');
  writeFileSync(wrapper, `#!/bin/sh\nexec ${JSON.stringify(realPython())} "$@"\n`);
  chmodSync(wrapper, 0o755);
  const result = await runCli(['run', '--python', wrapper, '--python-path', modelsDir, '--model', `add=${join(modelsDir, 'add.py')}`, '--partitions', '1'],
    '{"key":"a","a":2,"b":3}\n', { cwd });
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(jsonLines(result.stdout).map((l) => l.output), [{ sum: 5 }]);
});
