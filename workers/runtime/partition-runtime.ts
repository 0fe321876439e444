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
import { ConnectionBrokenError, ModelLoadError, PartitionFailedError, PoisonMessageError, PystageError, PythonStartError, UnusableReplyError } from '../../src/api/errors.js';
import type { Logger } from '../../src/telemetry/logger.js';
import { PipelineQueue } from '../../src/engine/pipeline-queue.js';
import { encodeFrame, type CommandName, type ReplyError } from '../../src/protocol/index.js';
import { readReplyHead } from '../../src/protocol/replies.js';
import { commandRequest, hostReplyPayload, restoreStatePayloads } from '../../src/protocol/requests.js';
import type { ExecTask, ModelSpec, PartitionHost, RecoveryCounts, WorkerConfig } from '../../src/engine/worker-protocol.js';
import type { HostResult } from '../../src/context/host-services.js';
import { HostLink, parseHostRequest } from '../context/host-link.js';
import { PartitionState } from '../context/partition-state.js';
import { StateTable, type StateSnapshot } from '../../src/context/state-table.js';
import { runExec, type ExecEnv, type Operation } from './exec-plan.js';
import { ModelRegistry } from './model-registry.js';
import { PythonServerProcess, serverAddress, unixSocketPath } from '../server/python-server-process.js';
import { replyError } from './reply-map.js';
import { ReplyOrder } from './reply-order.js';
import { ServerConnection } from '../server/server-connection.js';
import { SpoolFiles } from '../server/spool-files.js';

/** The worker's config plus the interpreter its start task named. */
type RuntimeConfig = WorkerConfig & { python: string };

type Lifecycle = 'up' | 'recovering' | 'failed' | 'stopped';

/** The worker's partition: owns one Python server over one connection. */
export class PartitionRuntime {
  restarts = 0;
  /** Restarts by cause and re-executed messages, reported with every reply for the stage's metrics. */
  readonly recoveries: RecoveryCounts = { restartCauses: {}, reconnectCauses: {}, reexecuted: 0 };
  private server: PythonServerProcess | null = null;
  private connection: ServerConnection | null = null;
  /** Every operation not yet answered, in submission order; the running ones are on the wire. */
  private readonly queue = new PipelineQueue<Operation>();
  private lifecycle: Lifecycle = 'recovering';
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
  /** Replies are used in the order they arrived; one that cannot be used voids the ones after it. */
  private readonly replies = new ReplyOrder((operation, err, voided) => this.onUnusable(operation, err, voided));
  /** Operations whose replies were voided: resent first, once the server is restored. */
  private readonly voided: Operation[] = [];

  private constructor(private readonly config: RuntimeConfig, private readonly baseLogger: Logger) {
    this.logger = baseLogger;
    this.env = {
      partition: config.partition, inlineLimit: config.inlineLimit, maxFrameBytes: config.maxFrameBytes,
      spool: new SpoolFiles(config.spoolDir, config.partition),
      keyName: Buffer.from(config.keyField),
      submit: (operation) => this.submit(operation),
      readState: (model, payload, start, end) => this.partitionState.readReply(model, payload, start, end),
      applyState: (changes) => this.partitionState.apply(changes),
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
      const toLoad = [...models];
      await runtime.launchWithRetries(false, toLoad, 'start');
      runtime.lifecycle = 'up';
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

  /**
   * Replace the partition's state, in queue order: the server gets it as a restoreState behind every
   * message submitted before, and the worker's copy changes when that reply arrives (replies before it
   * apply their changes first). A restart meanwhile restores the old copy and then resends this.
   */
  loadState(snapshot: StateSnapshot): Promise<null> {
    const table = new StateTable();
    table.load(snapshot);
    // In as many frames as restoring after a restart takes. Each frame's entries reach the worker's copy
    // when its reply arrives, so a restart between two frames restores the frames already done and then
    // resends the rest (the first replaces, the others add).
    const frames = [...restoreStatePayloads(table.entries(), Math.floor(this.config.maxFrameBytes / 4))];
    return new Promise((resolve, reject) => {
      frames.forEach((restore, i) => this.submit({
        crashes: 0,
        frame: (id, checksum) => encodeFrame(restore.request(id), this.config.maxFrameBytes, checksum),
        settle: (payload) => {
          const reply = parseReply(payload);
          if (reply.Code !== 0) {
            reject(replyError(reply.Code, reply.Error, this.config.partition, undefined, 'restoreState'));
            return;
          }
          if (i === 0) this.partitionState.table.load({});
          for (const [model, key, text, expiresAt] of restore.entries) this.partitionState.table.set(model, key, text, expiresAt);
          if (i === frames.length - 1) resolve(null);
        },
        giveUp: reject,
      }));
    });
  }

  status(): Promise<unknown> {
    return this.command('serverStatus', {});
  }

  /** Finish what is queued, ask the server to stop, and kill its process group if it lingers. */
  async stop(): Promise<void> {
    // A restart under way finishes first, so that the server it starts is the one stopped here.
    if (this.recovery) await this.recovery;
    let asked = false;
    if (this.lifecycle === 'up' && this.connection && !this.connection.isBroken) {
      const stopped = this.command('stopServer', {}).catch(() => {});
      this.stopping = true;
      await stopped;
      asked = true;
    }
    this.stopping = true;
    this.lifecycle = 'stopped';
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
    if (this.lifecycle === 'failed' || this.lifecycle === 'stopped') {
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
    if (this.lifecycle !== 'up' || connection === null || connection.isBroken) return;
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
        // Settling happens in ReplyOrder, which catches what settle throws (an unusable reply fails its
        // messages, never the thread): nothing here can throw past this callback.
        this.queue.answer(operation);
        // A reply decoded before a rewind broke the connection was computed on the state the rewind undoes.
        if (connection.isRewound) this.voided.push(operation);
        else this.replies.push(operation, payload);
        this.pump();
      }, () => { /* the connection broke; onBroken recovers and resends */ });
    }
  }

  /**
   * A reply arrived but could not be used: its operation fails and changes no state. The server has its
   * writes, and the replies after it were computed on top of them: the connection is given up, the server
   * restored from the state without them (connect), and those operations run again.
   */
  private onUnusable(operation: Operation, err: Error, voided: Operation[]): void {
    this.recoveries.unusableReplies = (this.recoveries.unusableReplies ?? 0) + 1;
    this.logger.error({ err, voided: voided.length }, 'a reply could not be used: its messages fail, the server is restored and the requests after it run again');
    operation.giveUp(new UnusableReplyError(
      `partition ${this.config.partition}: the server's reply could not be used (${err.message}); its messages failed and changed no state`,
      { partition: this.config.partition },
    ));
    this.voided.push(...voided);
    if (this.lifecycle === 'up' && this.connection !== null && !this.connection.isBroken) this.connection.abandon(err.message);
  }

  private giveUpAll(err: PystageError): void {
    for (const operation of [...this.voided.splice(0), ...this.queue.drain()]) operation.giveUp(err);
  }

  private onBroken(err: ConnectionBrokenError): void {
    if (this.lifecycle !== 'up') return;
    if (this.stopping) {
      // Stopping: nothing is restarted, and nothing still queued (stopServer itself) may wait forever.
      this.giveUpAll(new PartitionFailedError(`partition ${this.config.partition} is stopping`, { partition: this.config.partition }));
      return;
    }
    this.lifecycle = 'recovering';
    const inFlight = this.queue.unsendAll();
    this.logger.warn({ reason: err.reason, inFlight, queued: this.queue.size, progress: err.progress }, err.message);
    if (inFlight > 0 && err.reason !== 'rewind') {
      // A timeout names the head: replies leave as each request finishes, so the one without a reply is
      // the one running. After a crash the server may have finished replies it never sent, so with several
      // requests in flight any of them may be the one that broke it: all become suspects, resent one at a time.
      if (inFlight === 1 || err.reason === 'timeout') this.blame(err);
      else for (let i = 0; i < inFlight; i++) this.queue.at(i)!.suspect = true;
    }
    this.recovery = this.recover(err).then(() => {
      this.recovery = null;
      this.lifecycle = 'up';
      this.pump();
    }, (failure: unknown) => {
      this.recovery = null;
      this.lifecycle = 'failed';
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
   * `toLoad` are models to load strictly (at start): one that fails to load ends the start with its error.
   * `cause`: why (the way the connection broke, or `start`), counted per restart for the metrics.
   */
  private async launchWithRetries(reconnectFirst: boolean, toLoad: ModelSpec[], cause: string): Promise<void> {
    let reconnect = reconnectFirst;
    await pRetry(async () => {
      if (reconnect) {
        reconnect = false;
        await this.connect();
        this.recoveries.reconnectCauses[cause] = (this.recoveries.reconnectCauses[cause] ?? 0) + 1;
        this.logger.info({ cause }, 'reconnected to the Python server');
        return;
      }
      if (this.server) await this.retire(this.server);
      try {
        await this.launch(toLoad);
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
      shouldRetry: () => this.lifecycle === 'recovering',
    });
  }

  /** Spawn a server, connect, say hello, replay the registry, then load the `toLoad` models (emptying it). */
  private async launch(toLoad: ModelSpec[]): Promise<void> {
    const c = this.config;
    this.launches++;
    this.server = await PythonServerProcess.start({
      python: c.python, serverScript: c.serverScript, pythonPath: c.pythonPath, spoolDir: c.spoolDir,
      extraPythonPaths: c.extraPythonPaths, allowRoots: c.allowRoots,
      // One socket per start: a killed server's file may still be there (the server unlinks a stale one, too).
      unixSocket: unixSocketPath(c.spoolDir, `p${c.partition}.t${threadId}.${this.launches}`),
      uniq: `${c.stageId}.p${c.partition}.t${threadId}.${this.launches}.{port}`,
      maxFrameBytes: c.maxFrameBytes, inlineLimit: c.inlineLimit, maxOutputBytes: c.maxOutputBytes, logLevel: c.logLevel, startTimeoutMs: c.startTimeoutMs,
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
      while (toLoad.length > 0) {
        const spec = current = toLoad[0]!;
        await this.load('addModel', loadOptions(spec), spec.options ?? {});
        if (spec.initData !== undefined) await this.load('initModel', { ModelName: spec.name, DataFile: spec.initData });
        this.registry.set(spec);
        toLoad.shift();
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
    // Every new connection starts from the state as of the last reply used: a server that ran requests
    // whose replies were lost or unusable (or a fresh one) forgets what they did. Replies that arrived
    // are used first, and the operations they voided go back to the head of the queue.
    await this.replies.idle();
    if (this.voided.length > 0) this.queue.unshift(...this.voided.splice(0));
    // In as many frames as the state needs, each with at most a quarter of the frame limit of entries (no
    // single huge string here, no single huge json.loads there): the first replaces the server's state,
    // the rest add to it.
    for (const frame of restoreStatePayloads(this.partitionState.table.entries(), Math.floor(c.maxFrameBytes / 4))) {
      const restored = parseReply(await this.send(connection, frame.request));
      if (restored.Code !== 0) throw replyError(restored.Code, restored.Error, c.partition, undefined, 'restoreState');
    }
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
    // The file the failure is about: the model's, or for initModel the data file (a JSON error's line is in it).
    const file = (cmdOptions.ModelFile ?? cmdOptions.DataFile) as string | undefined;
    return replyError(reply.Code, reply.Error, this.config.partition, cmdOptions.ModelName as string | undefined, cmd, file);
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
  return {
    ModelName: spec.name, ModelFile: spec.file, ...(spec.className ? { ClassName: spec.className } : {}), Batch: spec.batch !== false,
    ...(spec.stateTtlMs !== undefined ? { StateTtlMs: spec.stateTtlMs } : {}),
  };
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

