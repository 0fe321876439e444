/**
 * One Python model server process: spawned by a partition worker, ready when it
 * prints its ready line, killed with its whole process group.
 *
 * Its file descriptors: fd 0 carries the auth token (written once, then closed: never in the
 * environment, where /proc/PID/environ would show it to the models and their subprocesses); fd 1
 * the ready line; fd 3 the server's own JSON log records, forwarded field by field into the
 * worker's pino logger; fd 2 anything else (a model's or its subprocess' raw writes to fd 1/2, an
 * interpreter crash), forwarded as text under one field so it can never pose as a log record.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { PythonStartError } from '../../src/api/errors.js';
import type { Logger } from '../../src/telemetry/logger.js';
import { mathThreadEnv } from '../../src/python/math-threads.js';
import { killProcessGroup } from '../../src/python/process-group.js';

export interface ServerProcessOptions {
  python: string;
  serverScript: string;
  pythonPath: string;
  /** Further sys.path entries, and further folders model and data files may lie in. */
  extraPythonPaths?: string[];
  allowRoots?: string[];
  spoolDir: string;
  /**
   * The Unix socket (mode 0600) the server listens on, or null for TCP on 127.0.0.1. A lone message
   * crosses it twice, and a Unix socket wakes the other side sooner than loopback TCP (bench/README.md).
   */
  unixSocket: string | null;
  /** May contain `{port}`, which the server replaces with the port it bound ("unix" on a Unix socket). */
  uniq: string;
  maxFrameBytes: number;
  inlineLimit: number;
  /** Default 64 MiB (the server's own). */
  maxOutputBytes?: number;
  /** NaN and infinities in outputs become null (`--nan-as-null`) instead of failing the message. */
  nanAsNull?: boolean;
  /** Threads for numpy's BLAS/OpenMP in this server, unless the environment already says (default 1). */
  mathThreads?: number;
  logLevel: string;
  startTimeoutMs: number;
  logger: Logger;
}

/** What the server printed once it was listening. */
export interface ReadyLine {
  event: 'ready';
  host: string | null;
  port: number | null;
  unixSocket: string | null;
  pid: number;
  uniq: string;
}

/** A server's listening address, as net.connect takes it. */
export type ServerAddress = { path: string } | { host: string; port: number };

export function serverAddress(ready: ReadyLine): ServerAddress {
  return ready.unixSocket !== null ? { path: ready.unixSocket } : { host: ready.host ?? '127.0.0.1', port: ready.port! };
}

/** Longest Unix socket path every platform takes (sun_path is 108 bytes on Linux, 104 on macOS, with its NUL). */
const MAX_SOCKET_PATH = 103;

/** The Unix socket of one server start inside the stage's spool directory (0700), or null (TCP) if the path is too long. */
export function unixSocketPath(spoolDir: string, name: string): string | null {
  const path = join(spoolDir, `${name}.sock`);
  return Buffer.byteLength(path) <= MAX_SOCKET_PATH ? path : null;
}

const pinoLevels: Record<string, string> = {
  debug: 'debug', info: 'info', warning: 'warn', warn: 'warn', error: 'error', critical: 'fatal',
};

/**
 * Why a start failed, as PythonStartError `type`: `Killed` (a signal from outside: retry at no cost),
 * `NotFound` and `Exited` (the interpreter or the server script cannot run: retrying cannot help),
 * `StartTimeout` and `BadReadyLine` (may pass on a retry).
 */
export type StartFailure = 'Killed' | 'NotFound' | 'Exited' | 'StartTimeout' | 'BadReadyLine';

/** A running Python server: spawn it with `start`, stop it with `kill`. */
export class PythonServerProcess {
  readonly token = randomBytes(24).toString('hex');
  ready!: ReadyLine;
  /** The pid it was spawned with, kept after it exited (for its group and its spool files). */
  spawnedPid: number | null = null;
  /** The signal that ended the server, once it exited by one (SIGKILL from outside, an OOM kill...). */
  exitSignal: NodeJS.Signals | null = null;
  /** Its exit code, once it exited without a signal. */
  exitCode: number | null = null;
  private child!: ChildProcess;
  private exited: Promise<void> = Promise.resolve();
  private recentStderr: string[] = [];

  private constructor(private readonly options: ServerProcessOptions) {}

  /** The Unix socket it was told to listen on (null: TCP). */
  get unixSocket(): string | null {
    return this.options.unixSocket;
  }

  /** Spawn a server and resolve once its ready line arrived. */
  static async start(options: ServerProcessOptions): Promise<PythonServerProcess> {
    const server = new PythonServerProcess(options);
    await server.spawnAndWait();
    return server;
  }

  get pid(): number | null {
    return this.child.exitCode === null && this.child.signalCode === null ? this.child.pid ?? null : null;
  }

  get alive(): boolean {
    return this.pid !== null;
  }

  /** Resolves when the process has exited. */
  whenExited(): Promise<void> {
    return this.exited;
  }

  /** SIGKILL the server's process group and wait for the server's exit. */
  async kill(): Promise<void> {
    this.killSync();
    await this.exited;
  }

  /** Kill without waiting: for process exit hooks, where nothing async runs. */
  killSync(): void {
    killProcessGroup(this.spawnedPid);
  }

  private spawnAndWait(): Promise<void> {
    const o = this.options;
    const args = [
      o.serverScript,
      ...(o.unixSocket !== null ? ['--unix-socket', o.unixSocket] : ['--host', '127.0.0.1', '--port', '0']),
      '--python-path', o.pythonPath,
      ...(o.extraPythonPaths ?? []).flatMap((dir) => ['--python-path', dir]),
      ...(o.allowRoots ?? []).flatMap((dir) => ['--allow-root', dir]),
      '--uniq', o.uniq,
      '--spool-dir', o.spoolDir,
      '--max-frame-bytes', String(o.maxFrameBytes),
      '--inline-limit', String(o.inlineLimit), '--max-output-bytes', String(o.maxOutputBytes ?? 64 * 1024 * 1024),
      '--log-level', o.logLevel === 'trace' ? 'debug' : o.logLevel,
      '--token-stdin', '--log-fd', '3',
      ...(o.nanAsNull ? ['--nan-as-null'] : []),
    ];
    // detached: a process group of its own, so a terminal's Ctrl-C reaches the stage (which drains and
    // then stops its servers), not the servers directly, and so the group can be killed as one.
    // Parent death is caught by the server's watchdog, which then kills the group itself.
    const { PYSTAGE_TOKEN: _inherited, ...env } = process.env;
    const child = spawn(o.python, args, {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      detached: true,
      env: { ...mathThreadEnv(o.mathThreads ?? 1, env), ...env, PYTHONUNBUFFERED: '1' },
    });
    this.child = child;
    this.spawnedPid = child.pid ?? null;
    // The token on stdin (argv and the environment are readable in /proc); the server reads one line.
    const stdin = child.stdin!;
    stdin.on('error', () => { /* the server died before reading it: its exit is reported below */ });
    stdin.end(`${this.token}\n`);
    const log = child.stdio[3] as Readable;
    // 'exit', not 'close': a model's own subprocess may hold the inherited pipes open long after.
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
      this.exitSignal = signal;
      this.exitCode = code;
      // Whatever the server's models started dies with it, however the server ended.
      killProcessGroup(this.spawnedPid);
      child.stdout?.destroy();
      child.stderr?.destroy();
      log.destroy();
      resolve();
    }));
    this.forwardLog(log);
    this.forwardOutput(child.stderr!);

    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (message: string, type: StartFailure) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.killSync();
        const tail = this.recentStderr.slice(-5).join('\n');
        reject(new PythonStartError(tail ? `${message}\n${tail}` : message, { type }));
      };
      const timer = setTimeout(
        () => fail(`Python server did not print its ready line within ${o.startTimeoutMs} ms (${o.python} ${o.serverScript})`, 'StartTimeout'),
        o.startTimeoutMs,
      );
      child.once('error', (err: NodeJS.ErrnoException) => {
        fail(err.code === 'ENOENT'
          ? `Python interpreter "${o.python}" was not found: install Python 3.9+ or pass its path with --python`
          : `Python interpreter "${o.python}" could not be started: ${err.message}`, 'NotFound');
      });
      child.once('exit', (code, signal) => {
        if (signal !== null) fail(`Python server was killed by ${signal} before it was ready`, 'Killed');
        // The server exits 0 before its ready line only when a SIGTERM/SIGINT reached it while starting.
        else if (code === 0) fail('Python server was stopped by a signal before it was ready', 'Killed');
        else fail(`Python server exited with code ${code} before it was ready; check --python-path "${o.pythonPath}"`, 'Exited');
      });
      const lines = createInterface({ input: child.stdout! });
      lines.once('line', (line) => {
        lines.close();
        child.stdout!.resume(); // nothing else may come, but never let the pipe fill
        try {
          const ready = JSON.parse(line) as ReadyLine;
          const listening = o.unixSocket !== null ? ready.unixSocket === o.unixSocket : typeof ready.port === 'number';
          if (ready.event !== 'ready' || !listening) throw new Error('not a ready line');
          this.ready = ready;
        } catch {
          fail(`Python server printed an unexpected first line: ${line.slice(0, 200)}`, 'BadReadyLine');
          return;
        }
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private remember(line: string): void {
    this.recentStderr.push(line);
    if (this.recentStderr.length > 20) this.recentStderr.shift();
  }

  /** The server's own log records (fd 3): one JSON object per line, its fields kept. */
  private forwardLog(log: Readable): void {
    const logger = this.options.logger;
    createInterface({ input: log }).on('line', (line) => {
      this.remember(line);
      let record: Record<string, unknown> | null = null;
      try { record = JSON.parse(line); } catch { /* not a record: shown as text below */ }
      if (record === null || typeof record !== 'object' || Array.isArray(record)) {
        logger.warn({ source: 'python', output: line }, 'unexpected line on the Python server\'s log channel');
        return;
      }
      // The worker's own fields (its pid, stage, partition) are never overridden by a record's extras.
      const { level, msg, time: _time, pid, stage: _stage, partition: _partition, source: _source, hostname: _host, ...rest } = record;
      if (pid !== undefined) rest.serverPid = pid;
      const method = pinoLevels[String(level).toLowerCase()] ?? 'info';
      (logger as unknown as Record<string, (o: object, m: string) => void>)[method]!.call(
        logger, { source: 'python', ...rest }, String(msg ?? ''),
      );
    });
  }

  /**
   * Raw writes to the server's fd 1 and 2 (a model's subprocess, `os.write`, an interpreter crash): text
   * under one field, never parsed, so a JSON line there cannot fake a record's level or partition.
   */
  private forwardOutput(output: Readable): void {
    const logger = this.options.logger;
    createInterface({ input: output }).on('line', (line) => {
      this.remember(line);
      logger.warn({ source: 'python', stream: 'stdout/stderr', output: line }, 'output of the Python server process');
    });
  }
}
