/**
 * The one connection from a partition worker to its Python server.
 *
 * Requests are pipelined and answered in request order, so they wait in a PipelineQueue and
 * each reply settles its head. Replies are handed over as payload bytes: the runtime decides
 * what to parse. While a batch runs, the server sends progress frames (negotiated in hello), so
 * the deadline is per message, not per request: the connection counts as stuck only when no
 * frame at all arrived for `requestTimeoutMs` while something was in flight.
 *
 * The connection is "broken" at the first socket error, close, undecodable reply, reply out of
 * order, or deadline. A broken connection rejects every unanswered request with ConnectionBrokenError
 * once; the partition runtime decides how to recover.
 */
import { connect, type Socket } from 'node:net';
import { ConnectionBrokenError, type BrokenReason } from '../../src/api/errors.js';

import { PipelineQueue } from '../../src/engine/pipeline-queue.js';
import { FrameDecoder, ReplyCode, type Checksum } from '../../src/protocol/index.js';
import { readReplyHead } from '../../src/protocol/replies.js';
import { replyRead, requestWritten, TRACING } from '../../src/telemetry/hop-trace.js';
import type { ServerAddress } from './python-server-process.js';


interface Unanswered {
  id: number;
  /** How long the server may send nothing while this request is at the head. */
  timeoutMs: number;
  resolve: (payload: Buffer) => void;
  reject: (err: Error) => void;
  /** The sender's own reference for this request (handed to the host request listener). */
  tag: unknown;
}

export interface ConnectionOptions {
  /** Where the server listens (serverAddress of its ready line). */
  address: ServerAddress;
  maxFrameBytes: number;
  /** How long the server may send nothing while a request is in flight before it counts as stuck. */
  requestTimeoutMs: number;
}

/** A pipelined request/reply connection to one Python server. */
export class ServerConnection {
  private readonly unanswered = new PipelineQueue<Unanswered>();
  /** The checksum of the frames sent: MD5 until hello agreed on CRC32 (the server's frames say theirs). */
  checksum: Checksum = 'md5';
  private nextId = 1;
  /** When the server last showed life for the head request (a frame, or the head becoming head). */
  private lastSign = 0;
  /** Messages of the head request the server reported done (progress frames). */
  private headProgress = 0;
  private broken: ConnectionBrokenError | null = null;
  private readonly watchdog: NodeJS.Timeout;
  private readonly decoder: FrameDecoder;
  private brokenListener: (err: ConnectionBrokenError) => void = () => {};
  private hostRequestListener: (payload: Buffer, tag: unknown) => void = () => {};
  /** Host requests of the server not answered yet, and until when the longest may wait (its timeout). */
  private hostOpen = 0;
  private hostUntil = 0;
  /** When the host began to be waited on (the first of the open requests). */
  private hostSince = 0;

  private constructor(private readonly socket: Socket, private readonly options: ConnectionOptions) {
    this.decoder = new FrameDecoder({
      maxFrameBytes: options.maxFrameBytes,
      onFrame: (payload) => this.onPayload(payload),
      onError: (kind) => this.break('bad-frame', `reply frame rejected: ${kind}`),
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.decoder.push(chunk));
    socket.on('error', (err) => this.break('socket-error', err.message));
    socket.on('close', () => this.break('closed', 'the server closed the connection'));
    // One coarse timer instead of a timer per request: checking a few times per deadline is enough.
    const tick = Math.max(10, Math.min(1000, Math.floor(options.requestTimeoutMs / 5)));
    this.watchdog = setInterval(() => this.checkDeadline(), tick);
    this.watchdog.unref();
  }

  /** Open a connection; rejects if the server does not accept it. */
  static open(options: ConnectionOptions): Promise<ServerConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect(options.address);
      const onError = (err: Error) => reject(err);
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve(new ServerConnection(socket, options));
      });
    });
  }

  /** Given up by `abandon`: replies still being handed over must not be used. */
  get isRewound(): boolean {
    return this.broken?.reason === 'rewind';
  }

  get isBroken(): boolean {
    return this.broken !== null;
  }

  /** Called once when the connection breaks (after unanswered requests were rejected). */
  onBroken(listener: (err: ConnectionBrokenError) => void): void {
    this.brokenListener = listener;
  }

  /**
   * Called with each hostRequest frame (a model asking the host while the head request runs). Until
   * it is answered (`answerHost`), or its timeout passed, the head's deadline does not run: time a model
   * waits on the host is not time it is stuck.
   */
  onHostRequest(listener: (payload: Buffer, tag: unknown) => void): void {
    this.hostRequestListener = listener;
  }

  /** Send the hostReply frame of a host request (dropped when the connection broke meanwhile). */
  answerHost(frame: Buffer): void {
    if (this.hostOpen > 0 && --this.hostOpen === 0) this.resumeDeadline(performance.now());
    if (this.broken) return;
    this.socket.write(frame);
  }

  /**
   * The host stopped being waited on at `until`: the head's deadline moves on by the time waited, and by
   * nothing else. The model's own time before and after the request still adds up toward the deadline,
   * so a model that polls the host in a loop is stuck like any other.
   */
  private resumeDeadline(until: number): void {
    this.lastSign += Math.max(0, until - this.hostSince);
  }

  /** Take the next request id; the request built with it must be sent next with `send`. */
  takeId(): number {
    return this.nextId++;
  }

  /**
   * Send one framed request carrying `id` (from takeId); resolves with the reply's payload bytes.
   * `timeoutMs` replaces `requestTimeoutMs` for this request (loading a model has a limit of its own).
   * `tag` is the caller's reference for it, given back with a host request made while it runs.
   */
  send(id: number, frame: Buffer, timeoutMs = this.options.requestTimeoutMs, tag?: unknown): Promise<Buffer> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      if (this.unanswered.size === 0) this.startHead();
      this.unanswered.push({ id, timeoutMs, resolve, reject, tag });
      this.unanswered.markSent();
      this.socket.write(frame);
      if (TRACING) requestWritten(id);
    });
  }

  /**
   * Give the connection up although nothing is wrong with it: a reply could not be used, so the server
   * must be restored and what is unanswered sent again. Unanswered requests are rejected as `rewind`.
   */
  abandon(detail: string): void {
    this.break('rewind', `a reply could not be used: ${detail}`);
  }

  /** Close the socket; unanswered requests are rejected as `closed`. */
  close(): void {
    this.break('closed', 'closed by the worker');
  }

  private startHead(): void {
    this.lastSign = performance.now();
    this.headProgress = 0;
  }

  private onPayload(payload: Buffer): void {
    if (this.broken) return;
    let head;
    try {
      head = readReplyHead(payload);
    } catch (err) {
      this.break('bad-frame', `reply payload is not a reply object: ${(err as Error).message}`);
      return;
    }
    const entry = this.unanswered.first();
    if (entry === undefined || head.id !== entry.id) {
      // A reply we did not ask for, or -3 for a frame the server could not read: the stream is out of step.
      this.break('out-of-order', `expected reply to request ${entry?.id ?? 'none'}, got Id ${head.id} (Code ${head.code})`);
      return;
    }
    const now = performance.now();
    if (head.code === ReplyCode.HOST_REQUEST && head.cmd === 'hostRequest') {
      // Asking is no sign of progress: only the time until the answer is left out of the deadline.
      if (this.hostOpen++ === 0) {
        this.hostSince = now;
        this.hostUntil = 0;
      }
      this.hostUntil = Math.max(this.hostUntil, now + hostTimeoutMs(payload, this.options.requestTimeoutMs));
      // The tag of the running request: its reply has not come, so it is the head.
      this.hostRequestListener(payload, entry.tag);
      return;
    }
    this.lastSign = now;
    if (head.code === ReplyCode.PROGRESS && head.cmd === 'progress') {
      this.headProgress = progressDone(payload, this.headProgress);
      return;
    }
    if (TRACING) replyRead(head.id);
    this.unanswered.answer(entry);
    if (this.unanswered.size > 0) this.startHead();
    entry.resolve(payload);
  }

  private checkDeadline(): void {
    const now = performance.now();
    if (this.hostOpen > 0) {
      if (now < this.hostUntil) return;
      // The host took longer than the request's own timeout: the server has given up on it by now.
      this.hostOpen = 0;
      this.resumeDeadline(this.hostUntil);
    }
    const head = this.unanswered.first();
    if (head !== undefined && now - this.lastSign > head.timeoutMs) {
      this.break('timeout', `no reply to request ${head.id} within ${head.timeoutMs} ms`);
    }
  }

  private break(reason: BrokenReason, detail: string): void {
    if (this.broken) return;
    const err = new ConnectionBrokenError(reason, detail, this.headProgress);
    this.broken = err;
    clearInterval(this.watchdog);
    this.socket.destroy();
    for (const p of this.unanswered.drain()) p.reject(err);
    // Replies decoded from the same chunk settle in microtasks queued before this point: let them run first,
    // so the owner never counts an answered request as lost.
    queueMicrotask(() => this.brokenListener(err));
  }
}

const TIMEOUT_MS = Buffer.from('"TimeoutMs":');

/** A hostRequest frame's TimeoutMs (written by the server as an integer), or `fallback`. */
function hostTimeoutMs(payload: Buffer, fallback: number): number {
  const at = payload.indexOf(TIMEOUT_MS);
  if (at < 0) return fallback;
  const value = Number.parseInt(payload.toString('latin1', at + TIMEOUT_MS.length, at + TIMEOUT_MS.length + 16), 10);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

/** The `Done` count of a progress frame; never goes back. */
function progressDone(payload: Buffer, previous: number): number {
  try {
    const done = (JSON.parse(payload.toString('utf8')) as { Result?: { Done?: unknown } }).Result?.Done;
    return typeof done === 'number' && done > previous ? done : previous;
  } catch {
    return previous;
  }
}
