import pRetry, { AbortError } from 'p-retry';
import type { Outcomes } from '../../src/engine/batch.js';
import { ConnectionBrokenError, PartitionFailedError, PystageError, UnusableReplyError } from '../../src/api/errors.js';
import type { Logger } from '../../src/telemetry/logger.js';
import { PipelineQueue } from '../../src/engine/pipeline-queue.js';
import type { CommandName } from '../../src/protocol/index.js';
import type { ExecTask, ModelSpec, PartitionHost, RecoveryCounts } from '../../src/engine/worker-protocol.js';
import { HostLink } from '../context/host-link.js';
import { PartitionState } from '../context/partition-state.js';
import type { StateSnapshot } from '../../src/context/state-table.js';
import { runExec, type ExecEnv, type Operation } from './exec-plan.js';
import { ModelRegistry } from './model-registry.js';
import { PythonServerProcess, serverAddress } from '../server/python-server-process.js';
import { ReplyOrder } from './reply-order.js';
import { ServerConnection } from '../server/server-connection.js';
import { SpoolFiles } from '../server/spool-files.js';
import { loadOptions } from './direct-request.js';
import { commandOperation, stateLoadOperations } from './queued-commands.js';
import { forwardHostRequest } from './host-forwarding.js';
import { blameAfterBreak, delay, isDeterministic, restartRetryOptions } from './recovery-policy.js';
import { loadModelsOnto, restoreStateOnto, retireServer, sayHello, serverStartOptions, type RuntimeConfig } from './server-handshake.js';

type Lifecycle = 'up' | 'recovering' | 'failed' | 'stopped';

/**
 * One partition: its Python server, the one connection to it, the model registry to replay, and every
 * operation not yet answered, in one FIFO (so messages and commands reach the server in submission order).
 *
 * When the connection breaks, the operation the server was working on is blamed (recovery-policy.ts),
 * the server is reconnected or restarted with backoff, brought to where the partition is
 * (server-handshake.ts: hello, state, registry), and every remaining operation is resent in order.
 * Starting is the same path as a restart: only failures a retry cannot fix end the start.
 *
 * Methods for the caller (partition-worker.ts):
 * - PartitionRuntime.start(config, models, logger, host?) -- spawn, connect, load; rejects typed
 * - exec(task)                 -- run a batch of messages; resolves with its Outcomes
 * - addModel(spec, cmd), removeModel(name), initModel(name, file), status(), loadState(snapshot) -- in queue order
 * - stop()                     -- finish what is queued, stop the server, kill its group if it lingers
 * - killSync()                 -- kill the server at once (process exit hooks)
 * - serverPid, uniq, restarts, recoveries -- read-only, for replies and metrics
 *
 * Internal (not for callers): submit() and pump() (the only way onto the wire once up; exec plans
 * submit through ExecEnv), onBroken()/recover()/launchWithRetries()/launch()/connect() (recovery), and
 * the direct sends of the handshake (direct-request.ts sendDirect, used only before the queue may send).
 */
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
    return new Promise((resolve, reject) => {
      for (const operation of stateLoadOperations(this.config, snapshot, this.partitionState.table, { resolve, reject })) this.submit(operation);
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
      await retireServer(server, this.env.spool, !exited);
    }
  }

  /** A command through the queue, behind every message submitted before it. */
  private command(cmd: CommandName, cmdOptions: Record<string, unknown>, modelOptions?: Record<string, unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => this.submit(commandOperation(this.config, cmd, cmdOptions, modelOptions, { resolve, reject })));
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
    blameAfterBreak(this.queue, err, inFlight, this.config);
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
      if (this.server) await retireServer(this.server, this.env.spool);
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
    }, restartRetryOptions(() => this.lifecycle === 'recovering'));
  }

  /** Spawn a server, connect, say hello, replay the registry, then load the `toLoad` models (emptying it). */
  private async launch(toLoad: ModelSpec[]): Promise<void> {
    this.launches++;
    this.server = await PythonServerProcess.start(serverStartOptions(this.config, this.launches, this.baseLogger));
    const server = this.server;
    // Every line from this partition names the server it is talking to.
    this.logger = this.baseLogger.child({ uniq: server.ready.uniq });
    await this.connect();
    await loadModelsOnto({
      connection: this.connection!, server, config: this.config, logger: this.logger, registry: this.registry, launches: this.launches,
    }, toLoad);
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
    connection.onHostRequest((payload, tag) => void forwardHostRequest(this.link, this.config.partition, this.config.maxFrameBytes, connection, payload, tag as Operation | undefined));
    await sayHello(connection, this.config, server.token, this.link !== null);
    // Every new connection starts from the state as of the last reply used: a server that ran requests
    // whose replies were lost or unusable (or a fresh one) forgets what they did. Replies that arrived
    // are used first, and the operations they voided go back to the head of the queue.
    await this.replies.idle();
    if (this.voided.length > 0) this.queue.unshift(...this.voided.splice(0));
    await restoreStateOnto(connection, this.partitionState.table.entries(), this.config);
  }
}
