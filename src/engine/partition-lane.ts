/**
 * The main thread's side of one partition: messages are appended, as bytes, to the open batch;
 * batches and commands leave in order as Piscina tasks to the partition's worker, at most
 * `pipelineDepth` at a time, and are delivered back in the order they left.
 *
 * A batch leaves as soon as the pipeline has room, so a lone message goes at once and batches grow
 * with load. It is closed earlier when it reaches its count limit (maxBatch, lowered for slow models
 * so that a batch takes about `batchTargetMs`), or `maxBatchBytes`.
 */
import type { MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { Batch, BatchSizer } from './batch.js';
import { errorFromRecord, PartitionFailedError, PartitionsError, toErrorRecord } from '../api/errors.js';
import { PipelineQueue } from './pipeline-queue.js';
import { killProcessGroup } from '../python/process-group.js';
import { Room } from './room.js';
import { batchSent, batchStamp, TRACING } from '../telemetry/hop-trace.js';
import type { StateChanges, StateSnapshot } from '../context/state-table.js';
import type { ExecTask, ExecValue, RecoveryCounts, WorkerReply, WorkerTask } from './worker-protocol.js';

/** Messages in a batch before the model's speed is measured. */
const FIRST_BATCH = 64;

/** Where a lane delivers completed batches. */
export interface BatchSink {
  complete(batch: Batch): void;
}

interface Command {
  task: WorkerTask;
  resolve: (reply: WorkerReply<unknown>) => void;
}

interface OpenBatch {
  batch: Batch;
  sink: BatchSink;
  /** Its row in the hop trace (bench/tools/hop-trace.ts), when tracing. */
  traceRow?: number;
}

type Job = OpenBatch | Command;

interface Sent {
  job: Job;
  reply: WorkerReply<unknown> | null;
  /** When the task left, for measuring how long a message takes. */
  at: number;
}

export interface LaneOptions {
  partition: number;
  maxBatch: number;
  maxBatchBytes: number;
  /** The time a batch should take in Python; batches of slow models hold fewer messages. */
  batchTargetMs: number;
  pipelineDepth: number;
  maxInFlight: number;
  maxInFlightBytes: number;
  /** About how long the queued and in-flight messages may take to run, at the measured speed. */
  maxInFlightMs: number;
  /** The start task for a replacement worker thread (current interpreter, models, state and host port). */
  startTask: () => WorkerTask;
  /** A delivered batch changed the partition's state: keep the main thread's mirror in step. */
  onStateChanges?: (changes: StateChanges) => void;
  /** A loadState command was answered: the mirror becomes that state, in delivery order. */
  onStateLoaded?: (state: StateSnapshot) => void;
}

/** One partition's queue, pool and in-order delivery. */
export class PartitionLane {
  restarts = 0;
  serverPid: number | null = null;
  /** The worker's latest recovery counts (metrics). */
  recovery: RecoveryCounts = { restartCauses: {}, reconnectCauses: {}, reexecuted: 0 };
  /** Worker threads lost and replaced (their server goes with them). */
  threadReplacements = 0;
  private open: OpenBatch | null = null;
  private readonly sizer = new BatchSizer();
  /** Sealed batches and commands not yet sent. */
  private readonly jobs: Job[] = [];
  private readonly sent = new PipelineQueue<Sent>();
  private messages = 0;
  private bytes = 0;
  /** Messages in tasks sent to the worker and not answered yet. */
  private sentMessages = 0;
  /** maxInFlight, lowered for a slow model so that what is read ahead runs in about maxInFlightMs. */
  private messageLimit: number;
  private flushScheduled = false;
  /** Milliseconds one message takes in the worker and server, measured (0 until known). */
  private msPerMessage = 0;
  private lastReplyAt = 0;
  /** The latest time stamped on a batch (ms since the epoch). */
  private lastNow = 0;
  /** The start of a replacement worker thread, while one is under way. */
  private replacing: Promise<WorkerReply<unknown>> | null = null;
  /**
   * Delivered batches the reader has not finished with: the bytes they hold (their input and their outputs)
   * and their messages not yet taken. Counted in `bytes` until then, so a slow reader slows the input.
   */
  private readonly held = new Map<Batch, { bytes: number; left: number }>();
  /** Room for input: opens below half of maxInFlight messages and maxInFlightBytes. */
  readonly room = new Room();

  constructor(private readonly pool: Piscina, private readonly options: LaneOptions) {
    // Until the model's speed is known, a small first batch and a small read-ahead: a slow model must not
    // have thousands of messages queued before its first reply tells how slow it is.
    this.messageLimit = Math.min(options.maxInFlight, 4 * FIRST_BATCH);
  }

  /** Messages added and not yet sent to the worker. */
  get queued(): number {
    return this.messages - this.sentMessages;
  }

  /** Messages sent to the worker and not yet answered. */
  get inFlight(): number {
    return this.sentMessages;
  }

  get partition(): number {
    return this.options.partition;
  }

  /** True when input should wait for `room`. */
  get full(): boolean {
    return this.messages >= this.messageLimit || this.bytes >= this.options.maxInFlightBytes;
  }

  /**
   * Append one message: bytes [start, end) of `src` (key span in `src`, -1 when keyless), or, from the
   * API, `text` with the user's `key`.
   */
  add(sink: BatchSink, offset: number, src: Uint8Array | string, start: number, end: number, keyStart: number, keyEnd: number, route: string | null, key?: unknown): void {
    let open = this.open;
    const size = typeof src === 'string' ? src.length : end - start;
    if (open !== null && (open.sink !== sink || (open.batch.count > 0 && open.batch.length + size + 2 > this.options.maxBatchBytes))) {
      this.seal();
      open = null;
    }
    if (open === null) {
      open = { batch: this.sizer.create(this.partition), sink };
      this.open = open;
    }
    const batch = open.batch;
    const before = batch.length;
    const i = typeof src === 'string' ? batch.addText(offset, src, route) : batch.add(offset, src, start, end, keyStart, keyEnd, route);
    if (key !== undefined) (batch.keys ??= [])[i] = key;
    this.messages++;
    this.bytes += batch.length - before;
    if (this.full) this.room.close();
    if (batch.count >= this.batchLimit() || batch.length >= this.options.maxBatchBytes) this.seal();
    this.schedule();
  }

  /** Queue a command behind every message added before it; resolves with the worker's reply. */
  command(task: WorkerTask): Promise<WorkerReply<unknown>> {
    return new Promise((resolve) => {
      this.seal();
      this.jobs.push({ task, resolve });
      this.schedule();
    });
  }

  /** Messages per batch for the model's measured speed: about batchTargetMs of work, 1 to maxBatch. */
  private batchLimit(): number {
    if (this.msPerMessage === 0) return Math.min(FIRST_BATCH, this.options.maxBatch);
    return Math.max(1, Math.min(this.options.maxBatch, Math.floor(this.options.batchTargetMs / this.msPerMessage)));
  }

  private seal(): void {
    if (this.open === null) return;
    this.sizer.observe(this.open.batch.length, this.open.batch.count);
    this.jobs.push(this.open);
    this.open = null;
  }

  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Wait for the rest of this turn's input so it leaves as one batch.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.replacing) return;
    while (this.sent.size < this.options.pipelineDepth) {
      if (this.jobs.length === 0) this.seal();
      const job = this.jobs.shift();
      if (job === undefined) return;
      const sent: Sent = { job, reply: null, at: performance.now() };
      if ('batch' in job) this.sentMessages += job.batch.count;
      this.sent.push(sent);
      this.sent.markSent();
      void this.runTask(job).then((reply) => this.onReply(sent, reply));
    }
  }

  private onReply(sent: Sent, reply: WorkerReply<unknown>): void {
    sent.reply = reply;
    this.restarts = Math.max(this.restarts, reply.restarts);
    this.serverPid = reply.serverPid ?? this.serverPid;
    if (reply.recovery !== undefined) this.recovery = reply.recovery;
    if ('batch' in sent.job && reply.ok) this.measure(sent, sent.job.batch.count);
    if (TRACING && 'batch' in sent.job) batchStamp(sent.job.traceRow!, 'replied');
    this.deliver();
    this.flush();
  }

  /** Service time per message of a batch: from when it left, or the previous reply if later (it queued behind). */
  private measure(sent: Sent, count: number): void {
    const now = performance.now();
    const ms = (now - Math.max(sent.at, this.lastReplyAt)) / count;
    this.lastReplyAt = now;
    this.msPerMessage = this.msPerMessage === 0 ? ms : this.msPerMessage * 0.7 + ms * 0.3;
    // Read-ahead bounded by time too: a stop (Ctrl-C) drains in about maxInFlightMs, not maxInFlight × a slow
    // model's time. Never below two full batches, so the pipeline stays busy.
    const byTime = Math.floor(this.options.maxInFlightMs / Math.max(this.msPerMessage, 1e-6));
    this.messageLimit = Math.min(this.options.maxInFlight, Math.max(2 * this.batchLimit(), byTime));
  }

  /**
   * Run a task; if Piscina lost the worker thread, start its replacement once (with the current
   * interpreter and models) and resend. Until the replacement is started nothing new is sent, and the
   * tasks that failed with the thread are resent in the order they failed, so they keep their order.
   */
  private async runTask(job: Job): Promise<WorkerReply<unknown>> {
    try {
      return await this.runOnce(job);
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
        return await this.runOnce(job);
      } catch {
        const error = new PartitionFailedError(`partition ${this.partition}: its worker thread failed: ${(first as Error).message}`, { partition: this.partition });
        return { ok: false, error: toErrorRecord(error), restarts: this.restarts, serverPid: this.serverPid };
      }
    }
  }

  /**
   * One Piscina task; a batch's bytes and its spans are copied into one piece of memory of their own
   * (one ArrayBuffer per task, not two: each is a fresh external allocation for V8) and transferred.
   */
  private runOnce(job: Job): Promise<WorkerReply<unknown>> {
    if ('task' in job) return this.pool.run(job.task, transferOf(job.task));
    const { batch } = job;
    const spansAt = (batch.length + 3) & ~3;
    const memory = Buffer.allocUnsafeSlow(spansAt + batch.count * 8);
    batch.buf.copy(memory, 0, 0, batch.length);
    const data = memory.subarray(0, batch.length);
    const spans = new Int32Array(memory.buffer, spansAt, batch.count * 2);
    for (let i = 0; i < batch.count; i++) {
      spans[2 * i] = batch.spans[4 * i]!;
      spans[2 * i + 1] = batch.spans[4 * i + 1]!;
    }
    // Stamped once, never going back within the partition: expiry is judged against it, also when the batch is resent.
    batch.now ??= (this.lastNow = Math.max(this.lastNow, Date.now()));
    const task: ExecTask = { op: 'exec', data, spans, count: batch.count, routes: batch.routes, now: batch.now };
    if (TRACING) {
      const traced = batchSent(batch.partition, batch.count, batch.offsets[0]!);
      task.trace = traced.trace;
      job.traceRow = traced.row;
    }
    return this.pool.run(task, { transferList: [memory.buffer] });
  }

  private async startReplacement(): Promise<WorkerReply<unknown>> {
    // The dead thread's Python server (and what its models started) would otherwise live on, owned by nobody.
    killProcessGroup(this.serverPid);
    this.threadReplacements++;
    try {
      const task = this.options.startTask();
      return await this.pool.run(task, transferOf(task)) as WorkerReply<unknown>;
    } catch (err) {
      const error = new PartitionFailedError(`partition ${this.partition}: its worker thread could not be replaced: ${(err as Error).message}`, { partition: this.partition });
      return { ok: false, error: toErrorRecord(error), restarts: this.restarts, serverPid: this.serverPid };
    }
  }

  /** Hand back replies in the order their tasks were sent. */
  private deliver(): void {
    for (let head = this.sent.first(); head !== undefined && head.reply !== null; head = this.sent.first()) {
      this.sent.answer(head);
      const { job, reply } = head;
      if ('task' in job) {
        // Before any later batch's changes reach the mirror (a resolve's callbacks run only after this loop).
        if (job.task.op === 'loadState' && reply.ok) this.options.onStateLoaded?.(job.task.state);
        job.resolve(reply);
        continue;
      }
      const { batch, sink } = job;
      if (reply.ok) {
        try {
          batch.outcomes = reply.value as ExecValue;
          // In the order batches are delivered: the mirror is the state as of the last emitted output.
          if (batch.outcomes.state !== undefined) this.options.onStateChanges?.(batch.outcomes.state);
        } catch (err) {
          // Called from a reply's `.then`: a throw would be an unhandled rejection. This batch alone fails.
          batch.failAll(toErrorRecord(new PartitionFailedError(`partition ${this.partition}: a reply could not be delivered: ${(err as Error).message}`, { partition: this.partition })));
        }
      } else {
        batch.failAll(reply.error);
      }
      this.messages -= batch.count;
      this.sentMessages -= batch.count;
      // Its input stays counted, and its outputs join it, until the reader is done with them (release).
      const outputs = batch.outcomes?.data.length ?? 0;
      this.bytes += outputs;
      if (batch.count > 0) this.held.set(batch, { bytes: batch.length + outputs, left: batch.count });
      else this.bytes -= batch.length + outputs;
      if (this.full) this.room.close();
      if (TRACING) batchStamp(job.traceRow!, 'delivered');
      sink.complete(batch);
    }
    this.openIfRoom();
  }

  /** The reader is done with `messages` messages of a delivered batch: once all of them, its bytes are free. */
  release(batch: Batch, messages: number): void {
    const entry = this.held.get(batch);
    if (entry === undefined) return;
    entry.left -= messages;
    if (entry.left > 0) return;
    this.held.delete(batch);
    this.bytes -= entry.bytes;
    this.openIfRoom();
  }

  private openIfRoom(): void {
    if (this.messages < this.messageLimit / 2 && this.bytes < this.options.maxInFlightBytes / 2) this.room.open();
  }
}

/** A start task's port moves to the worker thread. */
function transferOf(task: WorkerTask): { transferList: MessagePort[] } | undefined {
  return task.op === 'start' && task.host ? { transferList: [task.host.port] } : undefined;
}

/** The typed error of a failed reply. */
export function replyFailure(reply: WorkerReply<unknown>): Error | null {
  return reply.ok ? null : errorFromRecord(reply.error);
}

/**
 * The values of one command's replies from every partition, or its failure: one failure, or the same on
 * every partition (a bad model file), as the typed error itself; different ones as a PartitionsError.
 */
export function commandValues(replies: WorkerReply<unknown>[]): unknown[] {
  const errors = replies.flatMap((r) => (r.ok ? [] : [errorFromRecord(r.error)]));
  if (errors.length === 1 || (errors.length > 1 && errors.every((e) => e.code === errors[0]!.code && e.message === errors[0]!.message))) {
    throw Object.assign(errors[0]!, { errors });
  }
  if (errors.length > 1) throw new PartitionsError(`${errors.length} partitions failed: ${errors.map((e) => e.message).join('; ')}`, errors);
  return replies.map((r) => (r as WorkerReply<unknown> & { ok: true }).value);
}
