/**
 * A real redis-server of a test's own: a free loopback port, no persistence, in its own process
 * group, stopped by pid at the end. Never a shared server, never a mock.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './free-port.js';

/** A running redis-server. */
export interface TestRedis {
  port: number;
  pid: number;
  /** `redis://127.0.0.1:PORT/STREAM` */
  url(stream: string): string;
  /** A plain client for the test's own reads and writes (closed by `stop`). */
  client: Redis;
  /** Stop the server (SIGTERM: it writes its append-only file) and start it again on the same port and directory. Needs `persistent`. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(500, () => { socket.destroy(); resolve(false); });
    socket.on('error', () => resolve(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d.toString();
      if (reply.includes('\r\n')) { socket.destroy(); resolve(reply.startsWith('+PONG')); }
    });
  });
}

/**
 * One redis-server process on `port` with its data in `dir`; resolves once it answers PING, or null if it
 * did not come up. Rejects when there is no redis-server to start (scripts/test-requirements.sh, run by
 * `npm test`, installs it or says which package to install).
 */
async function spawnServer(port: number, dir: string, persistent: boolean): Promise<{ child: ChildProcess; exited: Promise<void> } | null> {
  const persistence = persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', dir, '--loglevel', 'warning'], {
    stdio: ['ignore', 'ignore', 'ignore'], detached: true,
  });
  let failed: Error | null = null;
  // A spawn that fails (ENOENT) emits 'error' and no 'exit': without a listener it is an uncaught exception.
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (err) => {
      failed = err;
      resolve();
    });
  });
  for (let i = 0; i < 100 && child.exitCode === null && failed === null; i++) {
    if (await answersPing(port)) return { child, exited };
    await new Promise((r) => setTimeout(r, 50));
  }
  if (failed !== null) throw new Error(`cannot start redis-server (the Redis tests need redis-server 7+ on PATH): ${(failed as Error).message}`);
  stopGroup(child);
  await exited;
  return null;
}

/**
 * Start a redis-server on a free loopback port and wait until it answers PING. Without persistence
 * (`--save '' --appendonly no`) unless `persistent` (an fsync'ed append-only file, for restart tests).
 */
export async function startRedis(options: { persistent?: boolean } = {}): Promise<TestRedis> {
  const persistent = options.persistent ?? false;
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'pystage-redis-'));
    let server: Awaited<ReturnType<typeof spawnServer>>;
    try {
      server = await spawnServer(port, dir, persistent);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    if (server === null) {
      rmSync(dir, { recursive: true, force: true });
      // Another process took the port between the pick and the bind: pick again.
      if (attempt < 3) continue;
      throw new Error(`redis-server did not answer PING on port ${port}`);
    }
    const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: null });
    client.on('error', () => {});
    return {
      port,
      get pid() { return server!.child.pid!; },
      url: (stream) => `redis://127.0.0.1:${port}/${stream}`,
      client,
      async restart() {
        if (!persistent) throw new Error('restart() needs startRedis({ persistent: true }): without persistence the data would be gone');
        try { process.kill(server!.child.pid!, 'SIGTERM'); } catch { /* gone */ }
        await server!.exited;
        server = await spawnServer(port, dir, persistent);
        if (server === null) throw new Error(`redis-server did not come back on port ${port}`);
      },
      async stop() {
        client.disconnect();
        if (server !== null) {
          stopGroup(server.child);
          await server.exited;
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}

function stopGroup(child: ChildProcess): void {
  try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
}
