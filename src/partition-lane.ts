/**
 * The main thread's side of one partition: a FIFO of messages and commands,
 * sent to the partition's worker as Piscina tasks. Messages that arrive while
 * `pipelineDepth` tasks are in flight wait and go out together as one batch,
 * so batches grow with load and a lone message leaves at once. Replies are
 * delivered in the order the tasks were sent.
 */
import { Piscina } from 'piscina';
import { errorFromRecord, PartitionFailedError, toErrorRecord, type ErrorRecord } from './errors.js';
import { INPUT_SEPARATOR, type ExecValue, type ItemOutcome, type WorkerReply, type WorkerTask } from './worker-protocol.js';

/** One message on its way through the stage; it doubles as its own completion record. */
export interface Entry {
  offset: number;
  key: unknown;
  /** The message as JSON text (or the raw input line). */
  input: string;
  /** The one model to run, or null for every model. */
  route: string | null;
  /** Set when done: the partition that ran it (null if it never reached one). */
  partition: number | null;
  /** Set when done: the outcome per model, or one error for the whole message. */
  result: ItemOutcome[] | ErrorRecord | null;
  /** Told once, when `result` is set. */
  sink: { complete(entry: Entry): void };
}

/** Record what became of an entry and tell its sink. */
export function finish(entry: Entry, partition: number | null, result: ItemOutcome[] | ErrorRecord): void {
  entry.partition = partition;
  entry.result = result;
  entry.sink.complete(entry);
}

interface Command {
  task: WorkerTask;
  resolve: (reply: WorkerReply<unknown>) => void;
}

type Job = Entry | Command;

interface Sent {
  entries: Entry[] | null;
  reply: WorkerReply<unknown> | null;
  command: Command | null;
}

export interface LaneOptions {
  partition: number;
  maxBatch: number;
  pipelineDepth: number;
  maxInFlight: number;
  inlineLimit: number;
  /** The start task for a replacement worker thread (current interpreter and models). */
  startTask: () => WorkerTask;
}

/** One partition's queue, pool and in-order delivery. */
export class PartitionLane {
  restarts = 0;
  serverPid: number | null = null;
  private readonly jobs: Job[] = [];
  private jobsHead = 0;
  private readonly sent: Sent[] = [];
  private tasksInFlight = 0;
  private messages = 0;
  private flushScheduled = false;
  /** The start of a replacement worker thread, while one is under way. */
  private replacing: Promise<WorkerReply<unknown>> | null = null;
  private waiters: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly pool: Piscina, private readonly options: LaneOptions) {}

  get partition(): number {
    return this.options.partition;
  }

  /** Messages queued or in flight. */
  get load(): number {
    return this.messages;
  }

  /** True when input should wait for room (see `waitForRoom`). */
  get full(): boolean {
    return this.messages >= this.options.maxInFlight;
  }

  /** Queue one message. */
  push(entry: Entry): void {
    this.messages++;
    this.enqueue(entry);
  }

  /** Queue a command behind every message queued before it; resolves with the worker's reply. */
  command(task: WorkerTask): Promise<WorkerReply<unknown>> {
    return new Promise((resolve) => this.enqueue({ task, resolve }));
  }

  /** Resolves once the lane holds fewer than half of `maxInFlight` messages. */
  waitForRoom(): Promise<void> {
    if (this.messages < this.options.maxInFlight / 2) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Resolves once nothing is queued or in flight. */
  whenIdle(): Promise<void> {
    if (this.messages === 0 && this.tasksInFlight === 0 && this.queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private get queued(): number {
    return this.jobs.length - this.jobsHead;
  }

  private enqueue(job: Job): void {
    this.jobs.push(job);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // Wait for the rest of this turn's input so it leaves as one batch.
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  private flush(): void {
    if (this.replacing) return;
    while (this.queued > 0 && this.tasksInFlight < this.options.pipelineDepth) {
      const first = this.jobs[this.jobsHead]!;
      if ('task' in first) {
        this.jobsHead++;
        this.send({ entries: null, reply: null, command: first }, first.task);
        continue;
      }
      const entries: Entry[] = [];
      while (this.queued > 0 && entries.length < this.options.maxBatch) {
        const job = this.jobs[this.jobsHead]!;
        if ('task' in job) break;
        entries.push(job);
        this.jobsHead++;
      }
      let routes: (string | null)[] | null = null;
      let longest = 0;
      const inputs: string[] = new Array(entries.length);
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!;
        inputs[i] = e.input;
        if (e.input.length > longest) longest = e.input.length;
        if (e.route !== null) routes ??= entries.map((x) => x.route);
      }
      this.send({ entries, reply: null, command: null }, {
        op: 'exec', inputs: inputs.join(INPUT_SEPARATOR), count: entries.length, routes,
        // A UTF-16 unit is at most 3 UTF-8 bytes: below a third of the limit nothing can be too big.
        mayBeBig: longest * 3 > this.options.inlineLimit,
      });
    }
    if (this.jobsHead > 4096 && this.jobsHead * 2 > this.jobs.length) {
      this.jobs.splice(0, this.jobsHead);
      this.jobsHead = 0;
    }
  }

  private send(sent: Sent, task: WorkerTask): void {
    this.tasksInFlight++;
    this.sent.push(sent);
    void this.runTask(task).then((reply) => {
      sent.reply = reply;
      this.restarts = Math.max(this.restarts, reply.restarts);
      this.serverPid = reply.serverPid ?? this.serverPid;
      this.tasksInFlight--;
      this.deliver();
      this.flush();
    });
  }

  /** Run a task; if Piscina lost the worker thread, start a fresh one with the current models and try once more. */
  /**
   * Run a task; if Piscina lost the worker thread, start its replacement once (with the current
   * interpreter and models) and resend. Until the replacement is started nothing new is sent, and the
   * tasks that failed with the thread are resent in the order they failed, so they keep their order.
   */
  private async runTask(task: WorkerTask): Promise<WorkerReply<unknown>> {
    try {
      return await this.pool.run(task);
    } catch (first) {
      if (this.replacing === null) {
        const replacing = this.startReplacement();
        this.replacing = replacing;
        // Open the gate only after every failed task's resend (queued in microtasks) has been issued.
        void replacing.then(() => setImmediate(() => {
          this.replacing = null;
          this.flush();
        }));
      }
      const started = await this.replacing;
      if (!started.ok) return started;
      try {
        return await this.pool.run(task);
      } catch {
        const error = new PartitionFailedError(`partition ${this.partition}: its worker thread failed: ${(first as Error).message}`, { partition: this.partition });
        return { ok: false, error: toErrorRecord(error), restarts: this.restarts, serverPid: this.serverPid };
      }
    }
  }

  private async startReplacement(): Promise<WorkerReply<unknown>> {
    // The dead thread's Python server would otherwise live on, owned by nobody.
    if (this.serverPid !== null) {
      try { process.kill(this.serverPid, 'SIGKILL'); } catch { /* already gone */ }
    }
    try {
      return await this.pool.run(this.options.startTask()) as WorkerReply<unknown>;
    } catch (err) {
      const error = new PartitionFailedError(`partition ${this.partition}: its worker thread could not be replaced: ${(err as Error).message}`, { partition: this.partition });
      return { ok: false, error: toErrorRecord(error), restarts: this.restarts, serverPid: this.serverPid };
    }
  }

  /** Hand back replies in the order their tasks were sent. */
  private deliver(): void {
    while (this.sent.length > 0 && this.sent[0]!.reply !== null) {
      const { entries, reply, command } = this.sent.shift()!;
      if (command) {
        command.resolve(reply!);
        continue;
      }
      const r = reply as WorkerReply<ExecValue>;
      if (r.ok) deliverOutcomes(entries!, r.value, this.partition);
      else for (const entry of entries!) finish(entry, this.partition, r.error);
      this.messages -= entries!.length;
    }
    if (this.waiters.length > 0 && this.messages < this.options.maxInFlight / 2) {
      for (const w of this.waiters.splice(0)) w();
    }
    if (this.messages === 0 && this.tasksInFlight === 0 && this.queued === 0) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }
}

/** Decode an exec task's outcome lines (see ExecValue) and hand each entry its outcomes. */
function deliverOutcomes(entries: Entry[], value: ExecValue, partition: number): void {
  if (value.models.length === 0) {
    const error: ErrorRecord = { code: 'PYSTAGE_ROUTING', type: 'RoutingError', message: 'no model is loaded in this partition' };
    for (const entry of entries) finish(entry, partition, [{ model: entry.route ?? '', error }]);
    return;
  }
  const lines = value.outcomes.split('\n');
  const routed = entries.some((e) => e.route !== null);
  const width = routed ? 1 : value.models.length;
  for (let i = 0; i < entries.length; i++) {
    const outcomes: ItemOutcome[] = new Array(width);
    for (let m = 0; m < width; m++) {
      const line = lines[i * width + m]!;
      const model = routed ? entries[i]!.route! : value.models[m]!;
      const kind = line.charCodeAt(0);
      outcomes[m] = kind === 111 /* o */ ? { model, output: line.slice(1) }
        : kind === 110 /* n */ ? { model, output: null }
        : { model, error: JSON.parse(line.slice(1)) as ErrorRecord };
    }
    finish(entries[i]!, partition, outcomes);
  }
}

/** The typed error of a failed reply. */
export function replyFailure(reply: WorkerReply<unknown>): Error | null {
  return reply.ok ? null : errorFromRecord(reply.error);
}
