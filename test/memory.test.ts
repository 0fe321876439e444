/**
 * Memory stays bounded whatever the stream length: long runs under a capped heap. A per-message
 * leak (e.g. a reaction left on a long-lived promise per read) dies here with "heap out of memory".
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cliPath, repoRoot } from './support/paths.js';

const MESSAGES = 300_000;
const HEAP_MB = 48;

/** Run `node --max-old-space-size=HEAP_MB args`, feeding `lines` generated on the fly; resolves with code and stderr tail. */
function runCapped(args: string[], feed: boolean): Promise<{ code: number | null; stdoutLines: number; stderr: string }> {
  const child = spawn(process.execPath, [`--max-old-space-size=${HEAP_MB}`, ...args], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdoutLines = 0;
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { for (const b of c) if (b === 10) stdoutLines++; });
  child.stderr.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-4000); });
  child.stdin.on('error', () => {});
  if (feed) {
    const pad = 'p'.repeat(400);
    let i = 0;
    const write = () => {
      while (i < MESSAGES) {
        const chunk: string[] = [];
        for (let k = 0; k < 1000 && i < MESSAGES; k++, i++) chunk.push(`{"key":"k${i % 101}","a":${i},"b":1,"pad":"${pad}"}\n`);
        if (!child.stdin.write(chunk.join(''))) return void child.stdin.once('drain', write);
      }
      child.stdin.end();
    };
    write();
  } else {
    child.stdin.end();
  }
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdoutLines, stderr })));
}

test(`CLI: ${MESSAGES} lines of ~450 B under a ${HEAP_MB} MB heap`, async () => {
  const r = await runCapped([cliPath, 'run', '--model', 'add=py/models/add.py', '--partitions', '2'], true);
  assert.doesNotMatch(r.stderr, /heap out of memory/);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdoutLines, MESSAGES);
});

test(`API: ${MESSAGES} messages from an async generator under a ${HEAP_MB} MB heap`, async () => {
  const script = fileURLToPath(new URL('./support/api-stream.js', import.meta.url));
  const r = await runCapped([script, String(MESSAGES)], false);
  assert.doesNotMatch(r.stderr, /heap out of memory/);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdoutLines, 1, r.stderr);
});
