/**
 * `npm test` on a machine without what the suite needs: scripts/test-requirements.sh, run on a PATH
 * that holds only what the script uses (sh, id, a real python3) and, per case, a redis-server or an
 * apt-get. Nothing is uninstalled: the missing package is missing from PATH. The apt-get of the
 * "can install" case is a script that records its arguments and puts the real redis-server on PATH,
 * as the real one would.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from './support/paths.js';
import { tempDir } from './support/temp-dirs.js';

const script = join(repoRoot, 'scripts', 'test-requirements.sh');
const work = tempDir('pystage-requirements-');

const which = (tool: string) => execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
const realPython = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
let dirs = 0;

/** A bin directory holding sh, id and python3 (with numpy unless `python` says otherwise), plus `extra`. */
function machine(extra: Record<string, string> = {}, python = `#!${which('sh')}\nexec ${realPython} "$@"\n`): string {
  const bin = join(work, `bin${dirs++}`);
  mkdirSync(bin);
  for (const tool of ['sh', 'id']) symlinkSync(which(tool), join(bin, tool));
  for (const [name, text] of Object.entries({ python3: python, ...extra })) {
    writeFileSync(join(bin, name), text);
    chmodSync(join(bin, name), 0o755);
  }
  return bin;
}

/** Run the script with PATH = bin only; its command writes "ran" and PYSTAGE_NUMPY_PYTHON. */
function check(bin: string) {
  const run = spawnSync(which('sh'), [script, 'sh', '-c', 'echo "ran ${PYSTAGE_NUMPY_PYTHON:-}"'], {
    encoding: 'utf8', env: { PATH: bin, HOME: work },
  });
  return { code: run.status, stdout: run.stdout, lines: run.stderr.trimEnd().split('\n').filter((l) => l !== '') };
}

const realRedis = `#!${which('sh')}\nexec ${which('redis-server')} "$@"\n`;

test('everything there: the tests run, nothing is said', () => {
  const result = check(machine({ 'redis-server': realRedis }));
  assert.deepEqual(result, { code: 0, stdout: 'ran \n', lines: [] });
});

test('no redis-server and no way to install it: one line naming the package, nothing runs', () => {
  const result = check(machine());
  assert.equal(result.code, 1);
  assert.equal(result.stdout, '', 'the tests did not start');
  assert.equal(result.lines.length, 1, result.lines.join('\n'));
  assert.match(result.lines[0]!, /^pystage tests: redis-server is not on PATH .*install the package redis-server/);
});

test('a redis-server older than 7: refused the same way, naming its version', () => {
  const old = `#!${which('sh')}\necho "Redis server v=6.2.14 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64"\n`;
  const result = check(machine({ 'redis-server': old }));
  assert.equal(result.code, 1);
  assert.deepEqual(result.lines.length, 1);
  assert.match(result.lines[0]!, /version 6 \(the Redis tests need 7 or later\); install the package redis-server/);
});

test('no redis-server, but apt-get (as root, or through password-less sudo): installs it saying so in one line, then runs the tests', () => {
  const log = join(work, 'apt.log');
  const bin = machine();
  // What apt-get install redis-server does, as far as the script can tell: redis-server appears on PATH.
  writeFileSync(join(bin, 'apt-get'), `#!${which('sh')}\necho "$@" >> ${log}\n[ "$1" = install ] && ${which('ln')} -s ${which('redis-server')} ${bin}/redis-server\nexit 0\n`);
  // Run as another user than root, the script goes through `sudo -n`: this one lets it.
  writeFileSync(join(bin, 'sudo'), `#!${which('sh')}\n[ "$1" = -n ] && shift\n"$@"\n`);
  for (const tool of ['apt-get', 'sudo']) chmodSync(join(bin, tool), 0o755);
  const result = check(bin);
  assert.equal(result.code, 0, result.lines.join('\n'));
  assert.equal(result.stdout, 'ran \n');
  assert.deepEqual(result.lines, ['pystage tests: redis-server is not on PATH (the Redis tests need 7 or later); installing the package redis-server with apt-get']);
  assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), ['update -qq', 'install -y -qq redis-server']);
  assert.ok(existsSync(join(bin, 'redis-server')));
});

test('a python3 without numpy and no way to install it: one line naming python3-numpy, nothing runs', () => {
  // The real interpreter without its site-packages: a python3 that cannot import numpy.
  const result = check(machine({ 'redis-server': realRedis }, `#!${which('sh')}\nexec ${realPython} -S "$@"\n`));
  assert.equal(result.code, 1);
  assert.equal(result.stdout, '');
  assert.deepEqual(result.lines.length, 1);
  assert.match(result.lines[0]!, /^pystage tests: python3 cannot import numpy .*install the package python3-numpy/);
});
