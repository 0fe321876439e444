/**
 * The package as a user gets it: `npm pack`'s file list, and a TypeScript consumer compiling
 * against the packed package with moduleResolution node16 and running the README's API example.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { after, test } from 'node:test';
import { repoRoot } from './support/paths.js';

const work = mkdtempSync(join(tmpdir(), 'pystage-pack-'));
after(() => rmSync(work, { recursive: true, force: true }));

interface PackResult { filename: string; files: { path: string }[] }

/**
 * `npm pack` of this checkout. Its `prepack` (a fresh build) is skipped here: it would empty the dist/
 * the running suite is loaded from; the fresh-clone test below runs it, in a copy.
 */
function pack(dryRun: boolean): PackResult {
  const args = ['pack', '--json', '--ignore-scripts', '--pack-destination', work, ...(dryRun ? ['--dry-run'] : [])];
  return (JSON.parse(execFileSync('npm', args, { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as PackResult[])[0]!;
}

test('npm pack of a fresh clone (no dist/) builds first: bin, main and every export point at files in the tarball', () => {
  const clone = join(work, 'clone');
  // A clone has the sources and no build output; the dependencies are this checkout's (as after `npm ci`).
  cpSync(repoRoot, clone, { recursive: true, filter: (src) => !/[/\\](dist|node_modules|\.git)$/.test(src) });
  symlinkSync(join(repoRoot, 'node_modules'), join(clone, 'node_modules'));
  assert.ok(!existsSync(join(clone, 'dist')));
  const run = spawnSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: clone, encoding: 'utf8' });
  assert.equal(run.status, 0, `npm pack in a fresh clone failed:\n${run.stdout}\n${run.stderr}`);
  const [packed] = JSON.parse(run.stdout.slice(run.stdout.indexOf('['))) as PackResult[];
  const files = new Set(packed!.files.map((f) => f.path));
  const manifest = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
    bin: Record<string, string>; main: string; types: string; exports: Record<string, { types: string; import: string }>;
  };
  const targets = [...Object.values(manifest.bin), manifest.main, manifest.types, ...Object.values(manifest.exports).flatMap((e) => [e.types, e.import])];
  for (const target of targets) assert.ok(files.has(normalize(target)), `${target} is not in the tarball of a fresh clone`);
  assert.ok(files.has('dist/workers/partition-worker.js'));
  rmSync(clone, { recursive: true, force: true });
});

/** The first ```ts block of a README section. */
function codeBlock(readme: string, heading: string): string {
  const section = readme.slice(readme.indexOf(heading));
  const match = /```ts\n([\s\S]*?)```/.exec(section);
  assert.ok(match, `no ts block under ${heading}`);
  return match[1]!;
}

test('npm pack ships the runtime, py, docs and LICENSE, no tests or benchmarks; every README link is in the package', () => {
  const files = new Set(pack(true).files.map((f) => f.path));
  const strays = [...files].filter((f) => /^dist\/(test|bench)\//.test(f) || f.startsWith('py/tests/') || f.includes('__pycache__'));
  assert.deepEqual(strays, []);
  for (const needed of ['LICENSE', 'README.md', 'package.json', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli.js',
    'dist/workers/partition-worker.js', 'py/server.py', 'py/models/add.py', 'docs/guarantees.md']) {
    assert.ok(files.has(needed), `${needed} is not in the package`);
  }
  assert.match(readFileSync(join(repoRoot, 'LICENSE'), 'utf8'), /MIT License[\s\S]*pystage authors/);
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const links = [...readme.matchAll(/\]\(([^)#]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l));
  assert.ok(links.length > 0);
  for (const link of links) assert.ok(files.has(normalize(link)), `README links to ${link}, which the package does not ship`);
  for (const doc of [...files].filter((f) => f.startsWith('docs/'))) {
    const text = readFileSync(join(repoRoot, doc), 'utf8');
    for (const m of text.matchAll(/\]\(([^)#]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(m[1]!)) continue;
      const target = normalize(join(dirname(doc), m[1]!));
      assert.ok(files.has(target) || [...files].some((f) => f.startsWith(target + '/')), `${doc} links to ${m[1]}, which the package does not ship`);
    }
  }
});

test('a TypeScript consumer (node16 resolution, full lib check) compiles against the packed package; the README example runs as written', () => {
  const tarball = join(work, pack(false).filename);
  execFileSync('tar', ['-xzf', tarball, '-C', work]);
  const consumer = join(work, 'consumer');
  mkdirSync(join(consumer, 'node_modules'), { recursive: true });
  renameSync(join(work, 'package'), join(consumer, 'node_modules', 'pystage'));
  // The package's dependencies as npm would install them; @types/node for the consumer's compile.
  symlinkSync(join(repoRoot, 'node_modules'), join(consumer, 'node_modules', 'pystage', 'node_modules'));
  symlinkSync(join(repoRoot, 'node_modules', '@types'), join(consumer, 'node_modules', '@types'));
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { module: 'node16', moduleResolution: 'node16', target: 'ES2022', strict: true, skipLibCheck: false, outDir: 'out', types: ['node'] },
    files: ['main.mts'],
  }));
  writeFileSync(join(consumer, 'main.mts'), codeBlock(readFileSync(join(repoRoot, 'README.md'), 'utf8'), '## The API'));
  const tsc = spawnSync(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', consumer], { encoding: 'utf8' });
  assert.equal(tsc.status, 0, `the consumer does not compile:\n${tsc.stdout}${tsc.stderr}`);
  assert.ok(existsSync(join(consumer, 'out', 'main.mjs')));
  const run = spawnSync(process.execPath, ['out/main.mjs'], { cwd: consumer, encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  // Two partitions: the two outputs may come in either order.
  assert.deepEqual(lines.slice(0, 2).sort(), ['0 add {"sum":3}', '1 add {"sum":7}']);
  assert.match(lines[2]!, /^\{"in":2,"out":2,.*\} 2$/);
  // The API's default log level is the CLI's (warn): nothing on stderr for a clean run.
  assert.equal(run.stderr, '');
});
