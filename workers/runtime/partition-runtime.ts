/**
 * The state of one partition: its Python server, the one connection to it, the
 * model registry to replay, and every operation not yet answered.
 *
 * Every command goes through one FIFO of operations, so a partition's messages
 * and metadata commands reach the server in the order they were submitted.
 * When the connection breaks, the operation at the head (the one the server was
 * working on) is blamed: a batch is split into single messages, a single
 * message is given up after `maxAttempts` crashes or one deadline. Then the
 * server is reconnected or restarted (with backoff), the registry replayed, and
 * every remaining operation resent in order.
 *
 * Starting is the same path as a restart: a server killed from outside before its ready line or
 * while its models load is simply started again; only failures that a retry cannot fix (no
 * interpreter, a server that exits on start, a model that cannot load) end the start.
 */
import pRetry, { AbortError } from 'p-retry';
import { threadId } from 'node:worker_threads';
import type { Outcomes } from '../../src/engine/batch.js';
import { rmSync } from 'node:fs';
import { ModelLoadError, PartitionFailedError, PoisonMessageError, PystageError, PythonStartError } from '../../src/api/errors.js';
import type { Logger } from '../../src/telemetry/logger.js';
import { PipelineQueue } from '../../src/engine/pipeline-queue.js';
import { encodeFrame, type CommandName, type ReplyError } from '../../src/protocol/index.js';
import { readReplyHead } from '../../src/protocol/replies.js';
import { commandRequest, hostReplyPayload, restoreStateRequest } from '../../src/protocol/requests.js';
import type { ExecTask, ModelSpec, PartitionHost, RecoveryCounts, WorkerConfig } from '../../src/engine/worker-protocol.js';
import type { HostResult } from '../../src/context/host-services.js';
import { HostLink, parseHostRequest } from '../context/host-link.js';
import { PartitionState } from '../context/partition-state.js';
import { runExec, type ExecEnv, type Operation } from './exec-plan.js';
import { ModelRegistry } from './model-registry.js';
import { PythonServerProcess, serverAddress, unixSocketPath } from '../server/python-server-process.js';
import { replyError } from './reply-map.js';
import { ConnectionBrokenError, ServerConnection } from '../server/server-connection.js';
import { SpoolFiles } from '../server/spool-files.js';

/** The worker's config plus the interpreter its start task named. */
type RuntimeConfig = WorkerConfig & { python: string };

type State = 'up' | 'recovering' | 'failed' | 'stopped';

/** The worker's partition: owns one Python server over one connection. */
export class PartitionRuntime {
  restarts = 0;
  /** Restarts by cause and re-executed messages, reported with every reply for the stage's metrics. */
  readonly recoveries: RecoveryCounts = { restartCauses: {}, reexecuted: 0 };
  private server: PythonServerProcess | null = null;
  private connection: ServerConnection | null = null;
  /** Every operation not yet answered, in submission order; the running ones are on the wire. */
  private readonly queue = new PipelineQueue<Operation>();
  private state: State = 'recovering';
  private failure: PartitionFailedError | null = null;
  /** Set once stopServer is on its way: the connection closing then is expected, not a failure. */
  private stopping = false;
  /** The restart under way, if any. */
  private recovery: Promise<void> | null = null;
  /** Servers spawned so far; a server that comes up after the first spawn is a restart. */
  private launches = 0;
  private readonly registry = new ModelRegistry();
  private readonly env: ExecEnv;
  private logger: Logger;
  /** The partition's state (the worker owns it): changed by replies, restored onto every new connection. */
  private readonly partitionState = new PartitionState();
  /** The way to the host's handlers and cache; null when started without one (no host requests). */
  private link: HostLink | null = null;

  private constructor(private readonly config: RuntimeConfig, private readonly baseLogger: Logger) {
    this.logger = baseLogger;
    this.env = {
      partition: config.partition, inlineLimit: config.inlineLimit, maxFrameBytes: config.maxFrameBytes,
      spool: new SpoolFiles(config.spoolDir, config.partition),
      keyName: Buffer.from(config.keyField),
      submit: (operation) => this.submit(operation),
      applyState: (model, payload, start, end) => this.partitionState.applyReply(model, payload, start, end),
    };
  }

  /** Start the server, connect, say hello and load the stage's models; rejects with a typed error. */
  static async start(config: RuntimeConfig, models: ModelSpec[], logger: Logger, host?: PartitionHost): Promise<PartitionRuntime> {
    const runtime = new PartitionRuntime(config, logger);
    if (host) {
      runtime.partitionState.table.load(host.state);
      runtime.link = new HostLink(host.port);
    }
    try {
      // Models still to load: each one moves into the registry once loaded, so a retry after a kill
      // replays those and loads the rest.
      const pending = [...models];
      await runtime.launchWithRetries(false, pending, 'start');
      runtime.state = 'up';
    } catch (err) {
      await runtime.stop();
      throw err;
    }
    return runtime;
  }

  get serverPid(): number | null {
    return this.server?.pid ?? null;
  }

  get uniq(): string {
    return this.server?.ready.uniq ?? '';
  }

  /** Kill the server at once (process exit hooks). */
  killSync(): void {
    this.server?.killSync();
  }

  /** Run a batch of messages through its models; see Outcomes for the shape. */
  exec(task: ExecTask): Promise<Outcomes> {
    return runExec(task, this.registry.names(), this.env);
  }

  /** Load (addModel) or reload (updateModel) a model; resolves with the server's result. */
  async addModel(spec: ModelSpec, cmd: 'addModel' | 'updateModel'): Promise<unknown> {
    const result = await this.command(cmd, loadOptions(spec), spec.options ?? {});
    this.registry.set({ ...spec, initData: cmd === 'addModel' ? undefined : spec.initData });
    if (spec.initData !== undefined) await this.initModel(spec.name, spec.initData);
    return result;
  }

  async removeModel(name: string): Promise<unknown> {
    const result = await this.command('removeModel', { ModelName: name });
    this.registry.delete(name);
    this.partitionState.table.drop(name);
    return result;
  }

  async initModel(name: string, dataFile: string): Promise<unknown> {
    const result = await this.command('initModel', { ModelName: name, DataFile: dataFile });
    this.registry.setInitData(name, dataFile);
    return result;
  }

  status(): Promise<unknown> {
    return this.command('serverStatus', {});
  }

  /** Finish what is queued, ask the server to stop, and kill its process group if it lingers. */
  async stop(): Promise<void> {
    // A restart under way finishes first, so that the server it starts is the one stopped here.
    if (this.recovery) await this.recovery;
    let asked = false;
    if (this.state === 'up' && this.connection && !this.connection.isBroken) {
      const stopped = this.command('stopServer', {}).catch(() => {});
      this.stopping = true;
      await stopped;
      asked = true;
    }
    this.stopping = true;
    this.state = 'stopped';
    this.link?.close();
    this.giveUpAll(new PartitionFailedError(`partition ${this.config.partition} is stopped`, { partition: this.config.partition }));
    this.connection?.close();
    const server = this.server;
    if (server) {
      // A server that was asked to stop gets 2 s to do it; one that was not (a failed start) is killed now.
      const exited = asked && await Promise.race([server.whenExited().then(() => true), delay(2000).then(() => false)]);
      await this.retire(server, !exited);
    }
  }

  /** The server is done: kill its process group (unless it exited) and remove output files and the socket it left behind. */
  private async retire(server: PythonServerProcess, kill = true): Promise<void> {
    if (kill) await server.kill();
    else await server.whenExited();
    await this.env.spool.removeOutputsOf(server.spawnedPid);
    // A server that exits removes its socket itself; one that was killed cannot.
    if (server.unixSocket !== null) rmSync(server.unixSocket, { force: true });
  }

  /** A command through the queue, behind every message submitted before it. */
  private command(cmd: CommandName, cmdOptions: Record<string, unknown>, modelOptions?: Record<string, unknown>): Promise<unknown> {
    const loading = isLoading(cmd);
    return new Promise((resolve, reject) => {
      this.submit({
        frame: (id, checksum) => encodeFrame(commandRequest(cmd, id, cmdOptions, modelOptions), this.config.maxFrameBytes, checksum),
        settle: (payload) => {
          const reply = parseReply(payload);
          if (reply.Code >= 0) resolve(reply.Result);
          else reject(this.commandError(cmd, cmdOptions, reply));
        },
        giveUp: reject,
        crashes: 0,
        ...(loading ? {
          timeoutMs: this.config.loadTimeoutMs,
          failure: (hung: boolean, crashes: number) => this.loadFailure(cmd, cmdOptions.ModelName as string, hung, crashes),
        } : {}),
      });
    });
  }

  /** The error of a model whose loading (or init) hung past the load timeout or kept killing its server. */
  private loadFailure(cmd: CommandName, model: string, hung: boolean, crashes: number): ModelLoadError {
    const what = cmd === 'initModel' ? `running init() of model "${model}"` : `loading model "${model}"`;
    return new ModelLoadError(hung
      ? `${what} did not finish within ${this.config.loadTimeoutMs} ms (the load timeout: --load-timeout, loadTimeoutMs); its Python server was replaced`
      : `${what} broke its Python server ${crashes} times; given up`,
    { partition: this.config.partition, model, type: hung ? 'LoadTimeout' : 'ServerCrash' });
  }

  private submit(operation: Operation): void {
    if (this.state === 'failed' || this.state === 'stopped') {
      operation.giveUp(this.failure ?? new PartitionFailedError(`partition ${this.config.partition} is stopped`, { partition: this.config.partition }));
      return;
    }
    this.queue.push(operation);
    this.pump();
  }

  /**
   * Send what may be sent: everything, pipelined; but while the head is a suspect
   * it goes alone, so that if the server dies again the culprit is certain.
   */
  private pump(): void {
    const connection = this.connection;
    if (this.state !== 'up' || connection === null || connection.isBroken) return;
    while (this.queue.pending > 0 && !(this.queue.running > 0 && this.queue.first()!.suspect)) {
      const operation = this.queue.nextPending()!;
      const id = connection.takeId();
      let frame: Buffer;
      try {
        frame = operation.frame(id, connection.checksum);
      } catch (err) {
        // Nothing was sent: the request alone fails (e.g. too big for a frame), the queue goes on.
        this.queue.removePending();
        operation.giveUp(err as PystageError);
        continue;
      }
      this.queue.markSent();
      if (operation.sentBefore) this.recoveries.reexecuted += operation.messages ?? 0;
      operation.sentBefore = true;
      connection.send(id, frame, operation.timeoutMs, operation).then((payload) => {
        this.queue.answer(operation);
        operation.settle(payload);
        this.pump();
      }, () => { /* the connection broke; onBroken recovers and resends */ });
    }
  }

  private giveUpAll(err: PystageError): void {
    for (const operation of this.queue.drain()) operation.giveUp(err);
  }

  private onBroken(err: ConnectionBrokenError): void {
    if (this.state !== 'up') return;
    if (this.stopping) {
      // Stopping: nothing is restarted, and nothing still queued (stopServer itself) may wait forever.
      this.giveUpAll(new PartitionFailedError(`partition ${this.config.partition} is stopping`, { partition: this.config.partition }));
      return;
    }
    this.state = 'recovering';
    const inFlight = this.queue.unsendAll();
    this.logger.warn({ reason: err.reason, inFlight, queued: this.queue.size, progress: err.progress }, err.message);
    if (inFlight > 0) {
      // A timeout names the head: replies leave as each request finishes, so the one without a reply is
      // the one running. After a crash the server may have finished replies it never sent, so with several
      // requests in flight any of them may be the one that broke it: all become suspects, resent one at a time.
      if (inFlight === 1 || err.reason === 'timeout') this.blame(err);
      else for (let i = 0; i < inFlight; i++) this.queue.at(i)!.suspect = true;
    }
    this.recovery = this.recover(err).then(() => {
      this.recovery = null;
      this.state = 'up';
      this.pump();
    }, (failure: unknown) => {
      this.recovery = null;
      this.state = 'failed';
      this.failure = new PartitionFailedError(
        `partition ${this.config.partition}: the Python server could not be restarted: ${(failure as Error).message}`,
        { partition: this.config.partition },
      );
      this.logger.error({ err: failure }, this.failure.message);
      this.giveUpAll(this.failure);
    });
  }

  /** The head was running when the server broke: split it, or count it toward poison. */
  private blame(err: ConnectionBrokenError): void {
    const head = this.queue.first()!;
    if (head.split) {
      this.queue.dropFirst();
      // Every piece was on the wire inside the batch: sending it again re-executes it.
      const pieces = head.split(err.progress);
      for (const piece of pieces) piece.sentBefore = true;
      this.queue.unshift(...pieces);
      return;
    }
    head.crashes++;
    head.suspect = true;
    const hung = err.reason === 'timeout';
    if (hung || head.crashes >= this.config.maxAttempts) {
      this.queue.dropFirst();
      head.giveUp(head.failure?.(hung, head.crashes) ?? new PoisonMessageError(
        hung
          ? `the model did not finish the message within ${this.config.executeTimeoutMs} ms; its Python server was replaced`
          : `the message broke its Python server ${head.crashes} times; given up after ${this.config.maxAttempts} tries`,
        { partition: this.config.partition, type: hung ? 'Timeout' : 'ServerCrash' },
      ));
    }
  }

  private async recover(err: ConnectionBrokenError): Promise<void> {
    const server = this.server;
    const serverGone = err.reason === 'timeout' || !server?.alive
      || await Promise.race([server.whenExited().then(() => true), delay(100).then(() => false)]);
    await this.launchWithRetries(!serverGone, [], err.reason);
  }

  /**
   * Reconnect (when the server may still be alive) or start a server, with backoff: kills from outside
   * cost no retry, failures of our own use one up, and failures no retry can fix end it at once.
   * `pending` are models to load strictly (at start): one that fails to load ends the start with its error.
   * `cause`: why (the way the connection broke, or `start`), counted per restart for the metrics.
   */
  private async launchWithRetries(reconnectFirst: boolean, pending: ModelSpec[], cause: string): Promise<void> {
    let reconnect = reconnectFirst;
    await pRetry(async () => {
      if (reconnect) {
        reconnect = false;
        await this.connect();
        this.logger.info('reconnected to the Python server');
        return;
      }
      if (this.server) await this.retire(this.server);
      try {
        await this.launch(pending);
      } catch (err) {
        throw isDeterministic(err) ? new AbortError(err as Error) : err;
      }
      if (this.launches > 1) {
        this.restarts++;
        this.recoveries.restartCauses[cause] = (this.recoveries.restartCauses[cause] ?? 0) + 1;
        this.logger.info({ restarts: this.restarts, cause }, 'Python server restarted');
      }
    }, {
      retries: 5, factor: 2, minTimeout: 50, maxTimeout: 2000,
      // Outside kills do not use up retries, but they cannot keep a partition recovering forever either.
      maxRetryTime: 60_000,
      // A new server killed from outside (or its connection cut) says nothing about whether the next start
      // will work: only failures of our own (a crash on start, a replay refused, no ready line) use up retries.
      shouldConsumeRetry: ({ error }) => !isExternalFailure(error),
      shouldRetry: () => this.state === 'recovering',
    });
  }

  /** Spawn a server, connect, say hello, replay the registry, then load `pending` models (emptying it). */
  private async launch(pending: ModelSpec[]): Promise<void> {
    const c = this.config;
    this.launches++;
    this.server = await PythonServerProcess.start({
      python: c.python, serverScript: c.serverScript, pythonPath: c.pythonPath, spoolDir: c.spoolDir,
      extraPythonPaths: c.extraPythonPaths, allowRoots: c.allowRoots,
      // One socket per start: a killed server's file may still be there (the server unlinks a stale one, too).
      unixSocket: unixSocketPath(c.spoolDir, `p${c.partition}.t${threadId}.${this.launches}`),
      uniq: `${c.stageId}.p${c.partition}.t${threadId}.${this.launches}.{port}`,
      maxFrameBytes: c.maxFrameBytes, inlineLimit: c.inlineLimit, logLevel: c.logLevel, startTimeoutMs: c.startTimeoutMs,
      nanAsNull: c.nanAsNull, mathThreads: c.mathThreads,
      logger: this.baseLogger,
    });
    const server = this.server;
    // Every line from this partition names the server it is talking to.
    this.logger = this.baseLogger.child({ uniq: server.ready.uniq });
    await this.connect();
    let current: ModelSpec | null = null;
    try {
      for (const spec of this.registry.specs()) {
        current = spec;
        await this.direct('addModel', loadOptions(spec), spec.options ?? {});
        if (spec.initData !== undefined) await this.direct('initModel', { ModelName: spec.name, DataFile: spec.initData });
      }
      while (pending.length > 0) {
        const spec = current = pending[0]!;
        await this.load('addModel', loadOptions(spec), spec.options ?? {});
        if (spec.initData !== undefined) await this.load('initModel', { ModelName: spec.name, DataFile: spec.initData });
        this.registry.set(spec);
        pending.shift();
      }
    } catch (err) {
      if (isDeterministic(err)) throw err;
      const name = current?.name ?? '?';
      if (err instanceof ConnectionBrokenError && err.reason === 'timeout') {
        throw this.loadFailure('addModel', name, true, 0);
      }
      // Killed by a signal while loading (an outside kill, the OOM killer): a free retry, like any outside kill.
      // Anything else (a model whose constructor kills or breaks its fresh server) is our failure and must
      // use up retries, or the partition would respawn servers forever.
      const exited = await Promise.race([server.whenExited().then(() => true), delay(500).then(() => false)]);
      const signal = exited ? server.exitSignal : null;
      const how = !exited ? '' : signal ? ` (the server was killed by ${signal})` : ` (the server exited with code ${server.exitCode} while loading it)`;
      throw new PythonStartError(
        `loading model "${name}" onto the ${this.launches > 1 ? 'restarted' : 'new'} server failed: ${(err as Error).message}${how}`,
        { partition: c.partition, type: signal ? 'Killed' : 'LoadCrash' },
      );
    }
  }

  /** Open a connection to the current server and authenticate it; ask for progress frames. */
  private async connect(): Promise<void> {
    const server = this.server!;
    this.connection?.close();
    const connection = await ServerConnection.open({
      address: serverAddress(server.ready),
      maxFrameBytes: this.config.maxFrameBytes, requestTimeoutMs: this.config.executeTimeoutMs,
    });
    this.connection = connection;
    connection.onBroken((err) => {
      if (this.connection === connection) this.onBroken(err);
    });
    connection.onHostRequest((payload, tag) => void this.onHostRequest(connection, payload, tag as Operation | undefined));
    const progressMs = Math.max(10, Math.min(1000, Math.floor(this.config.executeTimeoutMs / 5)));
    const c = this.config;
    const hello = parseReply(await this.request(connection, 'hello', {
      Token: server.token, Progress: progressMs, Checksum: 'crc32', Partition: c.partition, State: { MaxBytes: c.maxStateBytes },
      ...(this.link ? { Host: { TimeoutMs: c.hostRequestTimeoutMs } } : {}),
    }));
    if (hello.Code !== 0) throw replyError(hello.Code, hello.Error, c.partition, undefined, 'hello');
    // A server that did not echo the option keeps MD5 (protocol v1's default) both ways.
    if ((hello.Result as { Checksum?: unknown } | undefined)?.Checksum === 'crc32') connection.checksum = 'crc32';
    // Every new connection starts from the state as of the last reply that arrived: a server that ran
    // requests whose replies were lost (or a fresh one) forgets what they did.
    const state = this.partitionState.table.toJson();
    const restored = parseReply(await this.send(connection, (id) => restoreStateRequest(id, state)));
    if (restored.Code !== 0) throw replyError(restored.Code, restored.Error, c.partition, undefined, 'restoreState');
  }

  /** A model asks the host (while the head request runs): forward it, and send the answer back on that connection. */
  private async onHostRequest(connection: ServerConnection, payload: Buffer, running: Operation | undefined): Promise<void> {
    let seq = 0;
    let answer: HostResult;
    try {
      const request = parseHostRequest(payload);
      seq = request.seq;
      const context = running?.context?.(request.index) ?? { model: '', key: null };
      answer = this.link === null
        ? { ok: false, type: 'HostRequestsDisabled', message: 'this partition has no host to ask' }
        : await this.link.ask({ kind: request.kind, name: request.name, payload: request.payload, ttlMs: request.ttlMs, partition: this.config.partition, model: context.model, key: context.key });
    } catch (err) {
      answer = { ok: false, type: 'BadHostRequest', message: (err as Error).message };
    }
    let frame: Buffer;
    try {
      frame = encodeFrame(hostReplyPayload(seq, answer), this.config.maxFrameBytes, connection.checksum);
    } catch (err) {
      // An answer too big for a frame fails the model's request, not the connection.
      frame = encodeFrame(hostReplyPayload(seq, { ok: false, type: 'HostAnswerTooLarge', message: (err as Error).message }), this.config.maxFrameBytes, connection.checksum);
    }
    connection.answerHost(frame);
  }

  /** Load a model (or run its init) outside the queue, at start: a refusal is the start's error. */
  private async load(cmd: 'addModel' | 'initModel', cmdOptions: Record<string, unknown>, modelOptions?: Record<string, unknown>): Promise<void> {
    const reply = parseReply(await this.request(this.connection!, cmd, cmdOptions, modelOptions));
    if (reply.Code < 0) throw this.commandError(cmd, cmdOptions, reply);
  }

  /** A request outside the queue, for the replay onto a restarted server. */
  private async direct(cmd: CommandName, cmdOptions: Record<string, unknown>, modelOptions?: Record<string, unknown>): Promise<void> {
    const reply = parseReply(await this.request(this.connection!, cmd, cmdOptions, modelOptions));
    if (reply.Code < 0) {
      // A model that loaded before and fails now (its file changed on disk): log it, keep the rest of the partition going.
      this.logger.error({ cmd, model: cmdOptions.ModelName, error: reply.Error }, 'replaying a model onto the restarted server failed');
    }
  }

  /** The typed error of a command the server refused (Code < 0), naming its model and file. */
  private commandError(cmd: CommandName, cmdOptions: Record<string, unknown>, reply: ParsedReply): PystageError {
    return replyError(reply.Code, reply.Error, this.config.partition, cmdOptions.ModelName as string | undefined, cmd, cmdOptions.ModelFile as string | undefined);
  }

  /** A command outside the queue (handshake, start, replay); loading ones get the load timeout. */
  private request(connection: ServerConnection, cmd: CommandName, cmdOptions: object, modelOptions?: object): Promise<Buffer> {
    return this.send(connection, (id) => commandRequest(cmd, id, cmdOptions, modelOptions), isLoading(cmd) ? this.config.loadTimeoutMs : undefined);
  }

  /** Frame the request `payload(id)` writes for a fresh id, send it, and resolve with the reply's payload. */
  private send(connection: ServerConnection, payload: (id: number) => string, timeoutMs?: number): Promise<Buffer> {
    const id = connection.takeId();
    return connection.send(id, encodeFrame(payload(id), this.config.maxFrameBytes, connection.checksum), timeoutMs);
  }
}

interface ParsedReply {
  Code: number;
  Result?: unknown;
  Error?: ReplyError;
}

/** A command's reply, parsed (commands answer small JSON; model outputs never come this way). */
function parseReply(payload: Buffer): ParsedReply {
  readReplyHead(payload);
  return JSON.parse(payload.toString('utf8')) as ParsedReply;
}

/** addModel/updateModel CmdOptions of a spec. Batch is always sent: the spec, not the server, decides. */
function loadOptions(spec: ModelSpec): Record<string, unknown> {
  return { ModelName: spec.name, ModelFile: spec.file, ...(spec.className ? { ClassName: spec.className } : {}), Batch: spec.batch !== false };
}

/** Commands that load a model or run its init: they get the load timeout, not the execute timeout. */
function isLoading(cmd: CommandName): boolean {
  return cmd === 'addModel' || cmd === 'updateModel' || cmd === 'initModel';
}

/**
 * A start failure no retry can fix: the interpreter is missing or the server exits on start (a bad
 * interpreter, a bad --python-path), or a model refuses to load or hangs while loading.
 */
function isDeterministic(error: unknown): boolean {
  const e = error as { type?: string };
  if (error instanceof PythonStartError) return e.type === 'NotFound' || e.type === 'Exited';
  return error instanceof PystageError && !(error instanceof ConnectionBrokenError);
}

/** A failure caused by the server being killed or its connection cut, not by anything we did. */
function isExternalFailure(error: unknown): boolean {
  const e = error as { code?: string; type?: string };
  // A deadline is the server hanging, which is no outside kill.
  if (error instanceof ConnectionBrokenError) return error.reason !== 'timeout';
  return e.type === 'Killed'
    || e.code === 'ECONNREFUSED' || e.code === 'ECONNRESET' || e.code === 'EPIPE';
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

