/**
 * What --state-dir costs: `npm run bench:durable [-- --messages N --rounds R --keys K]`.
 *
 * 1. Throughput: the CLI with a per-key counter model (bench/tools/models/add_with_state.py, 1,000 keys)
 *    over the same input file, `--input FILE --output FILE`, with and without `--state-dir` (checkpoints
 *    every second, a fresh dir per round), interleaved per round; spawn → exit, outputs counted.
 * 2. Restore: a store of K keys (default 1,000,000) over 2 partitions, written straight through the
 *    store; then (a) the restore alone (store → partition tables, the `pystage_state_restore_seconds`
 *    metric) in this process, and (b) createStage with and without that store (the workers and servers
 *    get the restored state too), each in a fresh node process.
 * Prints a table and one JSON line.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cliScript, python, repoRoot } from './config.js';
import { writeInputFile } from './input.js';
import { median } from './measurement.js';
import { EmbeddedStateStore } from '../src/state/embedded-state-store.js';
import { restoreState } from '../src/state/state-restore.js';

const benchModels = fileURLToPath(new URL('../../bench/tools/models/', import.meta.url));
const counterModel = `add=${benchModels}add_with_state.py`;
const self = fileURLToPath(import.meta.url);

/** Spawn → exit of one CLI run; throws unless it wrote one output line per message. */
async function cliRun(args: string[], output: string, count: number): Promise<number> {
  const started = performance.now();
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, [cliScript, ...args], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('close', (c) => resolve(c));
  });
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`pystage ${args.join(' ')} exited ${code}`);
  const lines = readFileSync(output).reduce((n, byte) => (byte === 10 ? n + 1 : n), 0);
  if (lines !== count) throw new Error(`${lines} output lines for ${count} messages`);
  return count / seconds;
}

/** Write `keys` counters (values 1..) over 2 partitions, in transactions of 100,000. */
async function writeStore(dir: string, keys: number): Promise<void> {
  const store = EmbeddedStateStore.open(dir);
  const job = { fingerprint: null, partitions: 2, models: ['add'] };
  for (let start = 0; start < keys; start += 100_000) {
    const changes: (string | number | null)[][] = [[], []];
    for (let i = start; i < Math.min(keys, start + 100_000); i++) changes[i % 2]!.push('add', `acct-${i}`, String(i), null);
    await store.commit(changes.map((c, unit) => ({
      unit, changes: c, meta: { job, seq: start, finished: true, below: 0, rejectsBelow: 0, outputBytes: null, errorBytes: null, at: new Date().toISOString() },
    })));
  }
  await store.close();
}

/** createStage to ready, in a fresh node process (this file with --child). */
async function startupMs(stateDir: string | null): Promise<number> {
  const args = [self, '--child', ...(stateDir === null ? [] : ['--state-dir', stateDir])];
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (c: Buffer) => { text += c.toString(); });
    child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`startup child exited ${code}`))));
  });
  return (JSON.parse(out) as { ms: number }).ms;
}

async function child(stateDir: string | undefined): Promise<void> {
  const { createStage } = await import('../src/index.js');
  const started = performance.now();
  const stage = await createStage({
    partitions: 2, python: python(), logLevel: 'warn', models: [{ name: 'add', file: `${benchModels}add_with_state.py` }],
    ...(stateDir === undefined ? {} : { stateDir }),
  });
  const ms = performance.now() - started;
  const keys = stage.stats().stateKeys;
  await stage.close();
  process.stdout.write(JSON.stringify({ ms, keys }) + '\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    messages: { type: 'string' }, rounds: { type: 'string' }, keys: { type: 'string' }, child: { type: 'boolean' }, 'state-dir': { type: 'string' },
  } });
  if (values.child) return child(values['state-dir']);
  const count = Number(values.messages ?? 1_000_000);
  const rounds = Number(values.rounds ?? 3);
  const keys = Number(values.keys ?? 1_000_000);
  const work = mkdtempSync(join(tmpdir(), 'pystage-bench-durable-'));
  try {
    const input = writeInputFile(work, count).path;
    const output = join(work, 'out.jsonl');
    const plain: number[] = [];
    const durable: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const base = ['run', '--model', counterModel, '--python', python(), '--input', input, '--output', output];
      plain.push(await cliRun(base, output, count));
      durable.push(await cliRun([...base, '--state-dir', join(work, `state-${r}`), '--checkpoint-interval', '1000'], output, count));
      process.stderr.write(`round ${r + 1}/${rounds}: ${Math.round(plain.at(-1)!)} msg/s without --state-dir, ${Math.round(durable.at(-1)!)} with\n`);
    }
    const storeDir = join(work, 'restore');
    await writeStore(storeDir, keys);
    const restores: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const restored = await restoreState(storeDir, { partitions: 2, models: ['add'], repartition: false }, 1000, null);
      if (restored.keys !== keys) throw new Error(`restored ${restored.keys} keys of ${keys}`);
      await restored.durable.close();
      restores.push(restored.seconds);
    }
    const startPlain: number[] = [];
    const startRestored: number[] = [];
    for (let r = 0; r < rounds; r++) {
      startPlain.push(await startupMs(null));
      startRestored.push(await startupMs(storeDir));
    }
    const result = {
      messages: count, rounds, keys,
      plainMsgPerSec: median(plain), durableMsgPerSec: median(durable), ratio: median(durable) / median(plain),
      restoreSeconds: median(restores), startupMs: median(startPlain), startupRestoredMs: median(startRestored),
    };
    process.stdout.write([
      `counter model, ${count.toLocaleString('en-US')} messages, CLI --input/--output, medians of ${rounds}:`,
      `  without --state-dir   ${Math.round(result.plainMsgPerSec).toLocaleString('en-US')} msg/s`,
      `  --state-dir (1 s)     ${Math.round(result.durableMsgPerSec).toLocaleString('en-US')} msg/s  (${(result.ratio * 100).toFixed(1)}%, target >= 80%)`,
      `restore of ${keys.toLocaleString('en-US')} keys: ${result.restoreSeconds.toFixed(2)} s store -> tables (target <= 2 s);`,
      `  createStage ${Math.round(result.startupRestoredMs)} ms with them, ${Math.round(result.startupMs)} ms without`,
      JSON.stringify(result),
    ].join('\n') + '\n');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
