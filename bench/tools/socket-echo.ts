/**
 * Loopback TCP against a Unix socket between node and Python, interleaved, as a lone message finds
 * them (both sides asleep between round trips): `node dist/bench/tools/socket-echo.js [--rounds 3]
 * [--trips 2000] [--gap-ms 1]`. 120 bytes each way (about a small request). Median and p99 in µs.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const server = fileURLToPath(new URL('../../../bench/tools/echo_server.py', import.meta.url));

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function trips(kind: 'tcp' | 'unix', address: string, count: number, gapMs: number): Promise<number[]> {
  const child = spawn(process.env.PYSTAGE_BENCH_PYTHON ?? 'python3', [server, kind, address], { stdio: ['ignore', 'pipe', 'inherit'] });
  const bound = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
  const socket = kind === 'unix' ? connect({ path: bound }) : connect({ host: '127.0.0.1', port: Number(bound) });
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.setNoDelay(true);
  const message = Buffer.alloc(120, 0x61);
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    if (gapMs > 0) await sleep(gapMs);
    const t = process.hrtime.bigint();
    await new Promise((resolve) => {
      socket.once('data', resolve);
      socket.write(message);
    });
    times.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  socket.destroy();
  await new Promise((resolve) => child.once('exit', resolve));
  return times;
}

function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

const rounds = arg('rounds', 3), count = arg('trips', 2000), gap = arg('gap-ms', 1);
const dir = mkdtempSync(join(tmpdir(), 'socket-echo-'));
const all = { tcp: [] as number[], unix: [] as number[] };
for (let r = 0; r < rounds; r++) {
  all.tcp.push(...await trips('tcp', '0', count, gap));
  all.unix.push(...await trips('unix', join(dir, `echo-${r}.sock`), count, gap));
}
rmSync(dir, { recursive: true, force: true });
console.log(`socket-echo: ${rounds} rounds × ${count} round trips, gap ${gap} ms; load average ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
for (const [kind, v] of Object.entries(all)) console.log(`${kind.padEnd(5)} median ${quantile(v, 0.5).toFixed(1).padStart(7)} µs   p99 ${quantile(v, 0.99).toFixed(1).padStart(8)} µs`);
