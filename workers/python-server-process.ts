/**
 * One Python model server process: spawned by a partition worker, ready when it
 * prints its ready line, killed by pid. Its stderr JSON log lines are forwarded
 * into the worker's pino logger.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { PythonStartError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';

export interface ServerProcessOptions {
  python: string;
  serverScript: string;
  pythonPath: string;
  /** Further sys.path entries, and further folders model and data files may lie in. */
  extraPythonPaths?: string[];
  allowRoots?: string[];
  spoolDir: string;
  /** May contain `{port}`, which the server replaces with the port it bound. */
  uniq: string;
  maxFrameBytes: number;
  inlineLimit: number;
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

const pinoLevels: Record<string, string> = {
  debug: 'debug', info: 'info', warning: 'warn', warn: 'warn', error: 'error', critical: 'fatal',
};

/** A running Python server: spawn it with `start`, stop it with `kill`. */
export class PythonServerProcess {
  readonly token = randomBytes(24).toString('hex');
  ready!: ReadyLine;
  private child!: ChildProcess;
  private exited: Promise<void> = Promise.resolve();
  private recentStderr: string[] = [];

  private constructor(private readonly options: ServerProcessOptions) {}

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

  /** SIGKILL the server (if still running) and wait for its exit. */
  async kill(): Promise<void> {
    this.killSync();
    await this.exited;
  }

  /**
   * Kill without waiting: for process exit hooks, where nothing async runs. The server leads its own
   * process group (it is spawned detached), so the group is killed with it: a model's subprocesses too.
   */
  killSync(): void {
    const pid = this.pid;
    if (pid === null) return;
    try { process.kill(-pid, 'SIGKILL'); } catch { /* group gone */ }
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }

  private spawnAndWait(): Promise<void> {
    const o = this.options;
    const args = [
      o.serverScript,
      '--host', '127.0.0.1', '--port', '0',
      '--python-path', o.pythonPath,
      ...(o.extraPythonPaths ?? []).flatMap((dir) => ['--python-path', dir]),
      ...(o.allowRoots ?? []).flatMap((dir) => ['--allow-root', dir]),
      '--uniq', o.uniq,
      '--spool-dir', o.spoolDir,
      '--max-frame-bytes', String(o.maxFrameBytes),
      '--inline-limit', String(o.inlineLimit),
      '--log-level', o.logLevel === 'trace' ? 'debug' : o.logLevel,
    ];
    // The token goes through the environment only: argv is visible to every local user.
    // detached: a process group of its own, so a terminal's Ctrl-C reaches the stage (which drains and
    // then stops its servers), not the servers directly. Parent death is still caught by the server's watchdog.
    const child = spawn(o.python, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, PYSTAGE_TOKEN: this.token, PYTHONUNBUFFERED: '1' },
    });
    this.child = child;
    // 'exit', not 'close': a model's own subprocess may hold the inherited pipes open long after.
    this.exited = new Promise((resolve) => child.once('exit', () => {
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve();
    }));
    this.forwardStderr(child);

    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (message: string, type?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.killSync();
        const tail = this.recentStderr.slice(-5).join('\n');
        reject(new PythonStartError(tail ? `${message}\n${tail}` : message, { type }));
      };
      const timer = setTimeout(
        () => fail(`Python server did not print its ready line within ${o.startTimeoutMs} ms (${o.python} ${o.serverScript})`),
        o.startTimeoutMs,
      );
      child.once('error', (err: NodeJS.ErrnoException) => {
        fail(err.code === 'ENOENT'
          ? `Python interpreter "${o.python}" was not found: install Python 3.9+ or pass its path with --python`
          : `Python interpreter "${o.python}" could not be started: ${err.message}`);
      });
      child.once('exit', (code, signal) => {
        if (signal !== null) fail(`Python server was killed by ${signal} before it was ready`, 'Killed');
        else fail(`Python server exited with code ${code} before it was ready; check --python-path "${o.pythonPath}"`);
      });
      const lines = createInterface({ input: child.stdout! });
      lines.once('line', (line) => {
        lines.close();
        child.stdout!.resume(); // nothing else may come, but never let the pipe fill
        try {
          const ready = JSON.parse(line) as ReadyLine;
          if (ready.event !== 'ready' || typeof ready.port !== 'number') throw new Error('not a ready line');
          this.ready = ready;
        } catch {
          fail(`Python server printed an unexpected first line: ${line.slice(0, 200)}`);
          return;
        }
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private forwardStderr(child: ChildProcess): void {
    const logger = this.options.logger;
    const lines = createInterface({ input: child.stderr! });
    lines.on('line', (line) => {
      this.recentStderr.push(line);
      if (this.recentStderr.length > 20) this.recentStderr.shift();
      let record: Record<string, unknown> | null = null;
      try { record = JSON.parse(line); } catch { /* a raw line, e.g. an interpreter crash */ }
      if (record === null || typeof record !== 'object') {
        logger.warn({ source: 'python' }, line);
        return;
      }
      const { level, msg, time: _time, ...rest } = record;
      const method = pinoLevels[String(level).toLowerCase()] ?? 'info';
      (logger as unknown as Record<string, (o: object, m: string) => void>)[method]!.call(
        logger, { source: 'python', ...rest }, String(msg ?? ''),
      );
    });
  }
}
