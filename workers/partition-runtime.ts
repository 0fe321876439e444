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
import {
  BadRequestError, ModelExecutionError, ModelLoadError, PartitionFailedError, PoisonMessageError, PythonStartError,
  type ErrorRecord, type PystageError,
} from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import { INPUT_SEPARATOR, type ExecValue, type ModelSpec, type WorkerConfig } from '../src/worker-protocol.js';

/** The worker's config plus the interpreter its start task named. */
type RuntimeConfig = WorkerConfig & { python: string };
import { ModelRegistry } from './model-registry.js';
import { PythonServerProcess } from './python-server-process.js';
import { ConnectionBrokenError, ServerConnection, type ServerReply } from './server-connection.js';
import { SpoolFiles } from './spool-files.js';

/** One request to the server, kept until it is answered or given up. */
interface Operation {
  /** The request's JSON text for a connection-assigned id. */
  build: (id: number) => string;
  /** Called with the server's reply. */
  settle: (reply: ServerReply) => void;
  /** Called when the operation is given up. */
  giveUp: (err: PystageError) => void;
  /** Times the server died or hung while this operation was alone in flight. */
  crashes: number;
  /** In flight when the server broke with others: resent alone until it is answered. */
  suspect?: boolean;
  /** For a batch of more than one message: the single-message operations that replace it after a crash. */
  split?: () => Operation[];
}

type State = 'up' | 'recovering' | 'failed' | 'stopped';

const json = JSON.stringify;

/** The worker's partition: owns one Python server over one connection. */
export class PartitionRuntime {
  restarts = 0;
  private server: PythonServerProcess | null = null;
  private connection: ServerConnection | null = null;
  /** Every operation not yet answered, in submission order; the first `sent` are on the wire. */
  private readonly queue: Operation[] = [];
  private sent = 0;
  private state: State = 'recovering';
  private failure: PartitionFailedError | null = null;
  /** Set once stopServer is on its way: the connection closing then is expected, not a failure. */
  private stopping = false;
  /** The restart under way, if any. */
  private recovery: Promise<void> | null = null;
  private readonly registry: ModelRegistry;
  private readonly spool: SpoolFiles;

  private logger: Logger;

  private constructor(private readonly config: RuntimeConfig, private readonly baseLogger: Logger) {
    this.logger = baseLogger;
    this.registry = new ModelRegistry();
    this.spool = new SpoolFiles(config.spoolDir, config.partition);
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

  /** Run each input through its models (every model, or its route); see ExecValue for the shape. */
  async exec(inputs: string, count: number, routes: (string | null)[] | null, mayBeBig: boolean): Promise<ExecValue> {
    const models = this.registry.names();
    const width = models.length;
    if (routes === null) {
      const lines: string[] = new Array(count * width);
      await Promise.all(models.map((model, m) => this.runModel(model, inputs, count, mayBeBig).then((outcomes) => {
        for (let i = 0; i < count; i++) lines[i * width + m] = outcomes[i]!;
      })));
      return { models, outcomes: lines.join('\n') };
    }
    const items = inputs.split(INPUT_SEPARATOR);
    const lines: string[] = new Array(count);
    const work: Promise<void>[] = [];
    for (const model of models) {
      const indices: number[] = [];
      for (let i = 0; i < count; i++) if (routes[i] === model) indices.push(i);
      if (indices.length === 0) continue;
      const joined = indices.map((i) => items[i]).join(INPUT_SEPARATOR);
      work.push(this.runModel(model, joined, indices.length, mayBeBig).then((outcomes) => {
        for (let k = 0; k < indices.length; k++) lines[indices[k]!] = outcomes[k]!;
      }));
    }
    for (let i = 0; i < count; i++) {
      const route = routes[i]!;
      if (!models.includes(route)) {
        lines[i] = errorLine({ code: 'PYSTAGE_ROUTING', type: 'RoutingError', message: `no model named "${route}" is loaded (loaded: ${models.join(', ') || 'none'})` });
      }
    }
    await Promise.all(work);
    return { models, outcomes: lines.join('\n') };
  }

  /** Load (addModel) or reload (updateModel) a model; resolves with the server's result. */
  addModel(spec: ModelSpec, cmd: 'addModel' | 'updateModel'): Promise<unknown> {
    const options = { ModelName: spec.name, ModelFile: spec.file, ...(spec.className ? { ClassName: spec.className } : {}) };
    return this.command(cmd, options, spec.options ?? {}).then(async (result) => {
      this.registry.set({ ...spec, initData: cmd === 'addModel' ? undefined : spec.initData });
      if (spec.initData !== undefined) await this.initModel(spec.name, spec.initData);
      return result;
    });
  }

  removeModel(name: string): Promise<unknown> {
    return this.command('removeModel', { ModelName: name }).then((result) => {
      this.registry.delete(name);
      return result;
    });
  }

  initModel(name: string, dataFile: string): Promise<unknown> {
    return this.command('initModel', { ModelName: name, DataFile: dataFile }).then((result) => {
      this.registry.setInitData(name, dataFile);
      return result;
    });
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
    const closed = new PartitionFailedError(`partition ${this.config.partition} is stopped`, { partition: this.config.partition });
    for (const operation of this.queue.splice(0)) operation.giveUp(closed);
    this.sent = 0;
    this.connection?.close();
    const server = this.server;
    if (server) {
      const exited = await Promise.race([server.whenExited().then(() => true), delay(2000).then(() => false)]);
      if (!exited) await server.kill();
    }
  }

  private command(cmd: string, cmdOptions: Record<string, unknown>, modelOptions?: Record<string, unknown>): Promise<unknown> {
    const tail = modelOptions === undefined ? '' : `,"ModelOptions":${json(modelOptions)}`;
    const body = `"CmdOptions":${json(cmdOptions)}${tail}}`;
    return new Promise((resolve, reject) => {
      this.submit({
        build: (id) => `{"Cmd":"${cmd}","CmdVer":1,"Id":${id},${body}`,
        settle: (reply) => {
          if (reply.Code >= 0) resolve(reply.Result);
          else reject(replyError(reply, this.config.partition, cmdOptions.ModelName as string | undefined, cmd, cmdOptions.ModelFile as string | undefined));
        },
        giveUp: reject,
        crashes: 0,
      });
    });
  }

  /** Run inputs through one model: inline ones in batches, big ones one by one through spool files. */
  private runModel(model: string, joined: string, count: number, mayBeBig: boolean): Promise<string[]> {
    if (!mayBeBig && count <= this.config.maxBatch) return this.batchOperation(model, joined, count);
    const parts: Promise<string[]>[] = [];
    let batch: string[] = [];
    const flush = () => {
      if (batch.length > 0) parts.push(this.batchOperation(model, batch.join(INPUT_SEPARATOR), batch.length));
      batch = [];
    };
    for (const input of joined.split(INPUT_SEPARATOR)) {
      if (mayBeBig && Buffer.byteLength(input) > this.config.inlineLimit) {
        flush();
        parts.push(this.fileOperation(model, input));
      } else {
        batch.push(input);
        if (batch.length >= this.config.maxBatch) flush();
      }
    }
    flush();
    return Promise.all(parts).then((all) => all.flat());
  }

  private batchOperation(model: string, joined: string, count: number): Promise<string[]> {
    return new Promise((resolve) => this.submit(this.makeBatch(model, joined, count, resolve)));
  }

  private makeBatch(model: string, joined: string, count: number, done: (outcomes: string[]) => void): Operation {
    const prefix = `,"CmdOptions":{"ModelName":${json(model)},"Inputs":[`;
    const operation: Operation = {
      build: (id) => `{"Cmd":"executeBatch","CmdVer":1,"Id":${id}${prefix}${joined}]}}`,
      settle: (reply) => {
        this.batchOutcomes(model, count, reply).then(done, (err: Error) => {
          done(new Array<string>(count).fill(errorLine({ code: 'PYSTAGE_BAD_REQUEST', message: `reading the batch's results failed: ${err.message}` })));
        });
      },
      giveUp: (err) => done(new Array<string>(count).fill(errorLine(err.toRecord()))),
      crashes: 0,
    };
    if (count > 1) {
      operation.split = () => {
        const outcomes: string[] = new Array(count);
        let remaining = count;
        return joined.split(INPUT_SEPARATOR).map((input, k) => this.makeBatch(model, input, 1, ([outcome]) => {
          outcomes[k] = outcome!;
          if (--remaining === 0) done(outcomes);
        }));
      };
    }
    return operation;
  }

  private async fileOperation(model: string, input: string): Promise<string[]> {
    const path = this.spool.writeInput(input);
    try {
      const reply = await new Promise<ServerReply | PystageError>((resolve) => this.submit({
        build: (id) => `{"Cmd":"executeModel","CmdVer":1,"Id":${id},"CmdOptions":{"ModelName":${json(model)},"InputFile":${json(path)}}}`,
        settle: resolve,
        giveUp: resolve,
        crashes: 0,
      }));
      if (reply instanceof Error) return [errorLine(reply.toRecord())];
      return [await this.itemOutcome(model, reply)];
    } finally {
      await this.spool.remove(path);
    }
  }

  private async batchOutcomes(model: string, count: number, reply: ServerReply): Promise<string[]> {
    if (reply.Code < 0 || !Array.isArray(reply.Result)) {
      return new Array<string>(count).fill(errorLine(replyError(reply, this.config.partition, model, 'executeBatch').toRecord()));
    }
    const items = reply.Result as ServerReply[];
    const outcomes: string[] = new Array(count);
    for (let k = 0; k < count; k++) {
      const item = items[k];
      outcomes[k] = item === undefined
        ? errorLine({ code: 'PYSTAGE_BAD_REQUEST', message: `server answered ${items.length} of ${count} batch items` })
        : item.OutputFile === undefined ? this.inlineOutcome(model, item) : await this.itemOutcome(model, item);
    }
    return outcomes;
  }

  private inlineOutcome(model: string, item: ServerReply): string {
    if (item.Code === 0) return 'o' + json(item.Result);
    if (item.Code === 1) return 'n';
    return errorLine(replyError(item, this.config.partition, model, 'execute').toRecord());
  }

  private async itemOutcome(model: string, item: ServerReply): Promise<string> {
    if (item.Code === 0 && typeof item.OutputFile === 'string') {
      const text = await this.spool.takeOutput(item.OutputFile);
      // Outcome lines are newline-separated, so an output must be one line of JSON.
      return 'o' + (text.includes('\n') ? json(JSON.parse(text)) : text);
    }
    return this.inlineOutcome(model, item);
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
    if (this.state !== 'up' || this.connection!.isBroken) return;
    while (this.sent < this.queue.length && !(this.sent > 0 && this.queue[0]!.suspect)) {
      const operation = this.queue[this.sent++]!;
      this.connection!.request(operation.build).then((reply) => {
        // Replies arrive in request order, so the answered operation is the head of the queue.
        this.queue.shift();
        this.sent--;
        operation.settle(reply);
        this.pump();
      }, () => { /* the connection broke; onBroken recovers and resends */ });
    }
  }

  private onBroken(err: ConnectionBrokenError): void {
    if (this.state !== 'up') return;
    if (this.stopping) {
      // Stopping: nothing is restarted, and nothing still queued (stopServer itself) may wait forever.
      const closed = new PartitionFailedError(`partition ${this.config.partition} is stopping`, { partition: this.config.partition });
      this.sent = 0;
      for (const operation of this.queue.splice(0)) operation.giveUp(closed);
      return;
    }
    this.state = 'recovering';
    const inFlight = this.sent;
    this.sent = 0;
    this.logger.warn({ reason: err.reason, inFlight, queued: this.queue.length }, err.message);
    // The server may have computed replies it never sent, so with several requests in flight
    // any of them may be the one that broke it: all become suspects, resent one at a time.
    if (inFlight === 1) this.blame(err);
    else for (let i = 0; i < inFlight; i++) this.queue[i]!.suspect = true;
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
      for (const operation of this.queue.splice(0)) operation.giveUp(this.failure);
    });
  }

  /** The head was alone in flight when the server broke: split it, or count it toward poison. */
  private blame(err: ConnectionBrokenError): void {
    const head = this.queue[0]!;
    if (head.split) {
      const singles = head.split();
      for (const single of singles) single.suspect = true;
      this.queue.splice(0, 1, ...singles);
      return;
    }
    head.crashes++;
    head.suspect = true;
    const hung = err.reason === 'timeout';
    if (hung || head.crashes >= this.config.maxAttempts) {
      this.queue.shift();
      head.giveUp(new PoisonMessageError(
        hung
          ? `the model did not answer within ${this.config.executeTimeoutMs} ms; its Python server was replaced`
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
        await this.direct('addModel', { ModelName: spec.name, ModelFile: spec.file, ...(spec.className ? { ClassName: spec.className } : {}) }, spec.options ?? {});
        if (spec.initData !== undefined) await this.direct('initModel', { ModelName: spec.name, DataFile: spec.initData });
      }
    } catch (err) {
      // A model that kills or hangs its fresh server while loading is our failure, not an outside kill:
      // it must use up retries, or the partition would respawn servers forever.
      throw new PythonStartError(`reloading the models onto the restarted server failed: ${(err as Error).message}`);
    }
  }

  /** Open a connection to the current server and authenticate it. */
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
    const hello = await connection.request((id) => `{"Cmd":"hello","CmdVer":1,"Id":${id},"CmdOptions":{"Token":${json(server.token)}}}`);
    if (hello.Code !== 0) throw replyError(hello, this.config.partition, undefined, 'hello');
  }

  /** A request outside the queue, for the handshake and the replay. */
  private async direct(cmd: string, cmdOptions: Record<string, unknown>, modelOptions?: Record<string, unknown>): Promise<void> {
    const tail = modelOptions === undefined ? '' : `,"ModelOptions":${json(modelOptions)}`;
    const reply = await this.connection!.request((id) => `{"Cmd":"${cmd}","CmdVer":1,"Id":${id},"CmdOptions":${json(cmdOptions)}${tail}}`);
    if (reply.Code < 0) {
      // A model that loaded before and fails now (its file changed on disk): log it, keep the rest of the partition going.
      this.logger.error({ cmd, model: cmdOptions.ModelName, error: reply.Error }, 'replaying a model onto the restarted server failed');
    }
  }
}

/** A failure caused by the server being killed or its connection cut, not by anything we did. */
function isExternalFailure(error: unknown): boolean {
  const e = error as { code?: string; type?: string };
  return error instanceof ConnectionBrokenError || e.type === 'Killed'
    || e.code === 'ECONNREFUSED' || e.code === 'ECONNRESET' || e.code === 'EPIPE';
}

/** An error outcome line (see ExecValue). */
function errorLine(record: ErrorRecord): string {
  return 'e' + json(record);
}

/** The typed error for a reply with a negative code; `file` names the model file for load errors. */
function replyError(reply: ServerReply, partition: number, model: string | undefined, what: string, file?: string): PystageError {
  const type = reply.Error?.Type;
  const message = reply.Error?.Message ?? `server answered Code ${reply.Code}`;
  const details = { type, traceback: reply.Error?.Traceback ?? null, partition, model };
  const executing = what === 'execute' || what === 'executeBatch';
  if (reply.Code === -2 && executing) return new ModelExecutionError(message, details);
  if (!executing && model !== undefined && (reply.Code === -1 || reply.Code === -2)) {
    const where = file === undefined ? '' : ` (${file})`;
    return new ModelLoadError(`${what} "${model}"${where} failed: ${type ? `${type}: ` : ''}${message}`, details);
  }
  return new BadRequestError(`${what} failed (Code ${reply.Code}): ${type ? `${type}: ` : ''}${message}`, details);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

