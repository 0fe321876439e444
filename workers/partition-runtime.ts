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
 */
import pRetry from 'p-retry';
import { threadId } from 'node:worker_threads';
import type { Outcomes } from '../src/batch.js';
import { PartitionFailedError, PoisonMessageError, PythonStartError, type PystageError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import { PipelineQueue } from '../src/pipeline-queue.js';
import { encodeFrame, type CommandName, type ReplyError } from '../src/protocol/index.js';
import { readReplyHead } from '../src/protocol/replies.js';
import { commandRequest } from '../src/protocol/requests.js';
import type { ExecTask, ModelSpec, WorkerConfig } from '../src/worker-protocol.js';
import { runExec, type ExecEnv, type Operation } from './exec-plan.js';
import { ModelRegistry } from './model-registry.js';
import { PythonServerProcess } from './python-server-process.js';
import { replyError } from './reply-map.js';
import { ConnectionBrokenError, ServerConnection } from './server-connection.js';
import { SpoolFiles } from './spool-files.js';

/** The worker's config plus the interpreter its start task named. */
type RuntimeConfig = WorkerConfig & { python: string };

type State = 'up' | 'recovering' | 'failed' | 'stopped';

/** The worker's partition: owns one Python server over one connection. */
export class PartitionRuntime {
  restarts = 0;
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
  private readonly registry = new ModelRegistry();
  private readonly env: ExecEnv;
  private logger: Logger;

  private constructor(private readonly config: RuntimeConfig, private readonly baseLogger: Logger) {
    this.logger = baseLogger;
    this.env = {
      partition: config.partition, inlineLimit: config.inlineLimit, maxFrameBytes: config.maxFrameBytes,
      spool: new SpoolFiles(config.spoolDir, config.partition),
      submit: (operation) => this.submit(operation),
    };
  }

  /** Start the server, connect, say hello and load the stage's models; rejects with a typed error. */
  static async start(config: RuntimeConfig, models: ModelSpec[], logger: Logger): Promise<PartitionRuntime> {
    const runtime = new PartitionRuntime(config, logger);
    try {
      await runtime.launch();
      runtime.state = 'up';
      for (const spec of models) await runtime.addModel(spec, 'addModel');
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

  /** Finish what is queued, ask the server to stop, and kill it by pid if it lingers. */
  async stop(): Promise<void> {
    // A restart under way finishes first, so that the server it starts is the one stopped here.
    if (this.recovery) await this.recovery;
    if (this.state === 'up' && this.connection && !this.connection.isBroken) {
      const stopped = this.command('stopServer', {}).catch(() => {});
      this.stopping = true;
      await stopped;
    }
    this.stopping = true;
    this.state = 'stopped';
    this.giveUpAll(new PartitionFailedError(`partition ${this.config.partition} is stopped`, { partition: this.config.partition }));
    this.connection?.close();
    const server = this.server;
    if (server) {
      const exited = await Promise.race([server.whenExited().then(() => true), delay(2000).then(() => false)]);
      if (!exited) await server.kill();
    }
  }

  /** A command through the queue, behind every message submitted before it. */
  private command(cmd: CommandName, cmdOptions: Record<string, unknown>, modelOptions?: Record<string, unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.submit({
        frame: (id, checksum) => encodeFrame(commandRequest(cmd, id, cmdOptions, modelOptions), this.config.maxFrameBytes, checksum),
        settle: (payload) => {
          const reply = parseReply(payload);
          if (reply.Code >= 0) resolve(reply.Result);
          else reject(replyError(reply.Code, reply.Error, this.config.partition, cmdOptions.ModelName as string | undefined, cmd, cmdOptions.ModelFile as string | undefined));
        },
        giveUp: reject,
        crashes: 0,
      });
    });
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
      connection.send(id, frame).then((payload) => {
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
      this.queue.unshift(...head.split(err.progress));
      return;
    }
    head.crashes++;
    head.suspect = true;
    const hung = err.reason === 'timeout';
    if (hung || head.crashes >= this.config.maxAttempts) {
      this.queue.dropFirst();
      head.giveUp(new PoisonMessageError(
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
    let reconnect = !serverGone;
    await pRetry(async () => {
      if (reconnect) {
        reconnect = false;
        await this.connect();
        this.logger.info('reconnected to the Python server');
        return;
      }
      await this.server?.kill();
      await this.launch();
      this.restarts++;
      this.logger.info({ restarts: this.restarts }, 'Python server restarted');
    }, {
      retries: 5, factor: 2, minTimeout: 50, maxTimeout: 2000,
      // Outside kills do not use up retries, but they cannot keep a partition recovering forever either.
      maxRetryTime: 60_000,
      // A new server killed from outside (or its connection cut) says nothing about whether the next start
      // will work: only failures of our own (no interpreter, a crash on start, a replay refused) use up retries.
      shouldConsumeRetry: ({ error }) => !isExternalFailure(error),
      shouldRetry: () => this.state === 'recovering',
    });
  }

  /** Spawn a server, connect, say hello, and replay the registry. */
  private async launch(): Promise<void> {
    const c = this.config;
    this.server = await PythonServerProcess.start({
      python: c.python, serverScript: c.serverScript, pythonPath: c.pythonPath, spoolDir: c.spoolDir,
      uniq: `${c.stageId}.p${c.partition}.t${threadId}.{port}`,
      maxFrameBytes: c.maxFrameBytes, inlineLimit: c.inlineLimit, logLevel: c.logLevel, startTimeoutMs: c.startTimeoutMs,
      logger: this.baseLogger,
    });
    // Every line from this partition names the server it is talking to.
    this.logger = this.baseLogger.child({ uniq: this.server.ready.uniq });
    await this.connect();
    try {
      for (const spec of this.registry.specs()) {
        await this.direct('addModel', loadOptions(spec), spec.options ?? {});
        if (spec.initData !== undefined) await this.direct('initModel', { ModelName: spec.name, DataFile: spec.initData });
      }
    } catch (err) {
      // A model that kills or hangs its fresh server while loading is our failure, not an outside kill:
      // it must use up retries, or the partition would respawn servers forever.
      throw new PythonStartError(`reloading the models onto the restarted server failed: ${(err as Error).message}`);
    }
  }

  /** Open a connection to the current server and authenticate it; ask for progress frames. */
  private async connect(): Promise<void> {
    const server = this.server!;
    this.connection?.close();
    const connection = await ServerConnection.open({
      host: server.ready.host ?? '127.0.0.1', port: server.ready.port!,
      maxFrameBytes: this.config.maxFrameBytes, requestTimeoutMs: this.config.executeTimeoutMs,
    });
    this.connection = connection;
    connection.onBroken((err) => {
      if (this.connection === connection) this.onBroken(err);
    });
    const progressMs = Math.max(10, Math.min(1000, Math.floor(this.config.executeTimeoutMs / 5)));
    const hello = parseReply(await this.request(connection, 'hello', { Token: server.token, Progress: progressMs, Checksum: 'crc32' }));
    if (hello.Code !== 0) throw replyError(hello.Code, hello.Error, this.config.partition, undefined, 'hello');
    // A server that did not echo the option keeps MD5 (protocol v1's default) both ways.
    if ((hello.Result as { Checksum?: unknown } | undefined)?.Checksum === 'crc32') connection.checksum = 'crc32';
  }

  /** A request outside the queue, for the handshake and the replay. */
  private async direct(cmd: CommandName, cmdOptions: Record<string, unknown>, modelOptions?: Record<string, unknown>): Promise<void> {
    const reply = parseReply(await this.request(this.connection!, cmd, cmdOptions, modelOptions));
    if (reply.Code < 0) {
      // A model that loaded before and fails now (its file changed on disk): log it, keep the rest of the partition going.
      this.logger.error({ cmd, model: cmdOptions.ModelName, error: reply.Error }, 'replaying a model onto the restarted server failed');
    }
  }

  private request(connection: ServerConnection, cmd: CommandName, cmdOptions: object, modelOptions?: object): Promise<Buffer> {
    const id = connection.takeId();
    return connection.send(id, encodeFrame(commandRequest(cmd, id, cmdOptions, modelOptions), this.config.maxFrameBytes, connection.checksum));
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

/** addModel/updateModel CmdOptions of a spec. */
function loadOptions(spec: ModelSpec): Record<string, unknown> {
  return { ModelName: spec.name, ModelFile: spec.file, ...(spec.className ? { ClassName: spec.className } : {}) };
}

/** A failure caused by the server being killed or its connection cut, not by anything we did. */
function isExternalFailure(error: unknown): boolean {
  const e = error as { code?: string; type?: string };
  return error instanceof ConnectionBrokenError || e.type === 'Killed'
    || e.code === 'ECONNREFUSED' || e.code === 'ECONNRESET' || e.code === 'EPIPE';
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

