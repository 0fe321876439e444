/**
 * The one connection from a partition worker to its Python server.
 *
 * Requests are pipelined: the server answers in request order, so pending
 * requests are a FIFO and each reply settles the head. The connection is
 * "broken" at the first socket error, close, undecodable reply, reply out of
 * order, or when the head request outlives its deadline (a model stuck in
 * Python code). A broken connection rejects everything pending with
 * ConnectionBrokenError once; the partition runtime decides how to recover.
 */
import { connect, type Socket } from 'node:net';
import { FrameDecoder, encodeFrame, isReply, type Reply } from '../src/protocol/index.js';

/** Why a connection stopped being usable. `timeout` means the server is stuck, not just the socket. */
export type BrokenReason = 'closed' | 'socket-error' | 'bad-frame' | 'out-of-order' | 'timeout';

/** Rejection of every request pending on a connection that broke. */
export class ConnectionBrokenError extends Error {
  readonly code = 'PYSTAGE_CONNECTION_BROKEN';
  constructor(readonly reason: BrokenReason, detail: string) {
    super(`connection to the Python server broke (${reason}): ${detail}`);
  }
}

/** A reply payload, parsed. */
export type ServerReply = Reply;

interface Pending {
  id: number;
  resolve: (reply: ServerReply) => void;
  reject: (err: Error) => void;
}

export interface ConnectionOptions {
  host: string;
  port: number;
  maxFrameBytes: number;
  /** How long the oldest unanswered request may wait before the server counts as stuck. */
  requestTimeoutMs: number;
}

/** A pipelined request/reply connection to one Python server. */
export class ServerConnection {
  private readonly pending: Pending[] = [];
  private head = 0;
  private nextId = 1;
  private headSince = 0;
  private broken: ConnectionBrokenError | null = null;
  private readonly watchdog: NodeJS.Timeout;
  private readonly decoder: FrameDecoder;
  private brokenListener: (err: ConnectionBrokenError) => void = () => {};

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
    // One coarse timer instead of a timer per request: checking the head's age a few times per deadline is enough.
    const tick = Math.max(10, Math.min(1000, Math.floor(options.requestTimeoutMs / 5)));
    this.watchdog = setInterval(() => this.checkDeadline(), tick);
    this.watchdog.unref();
  }

  /** Open a connection; rejects if the server does not accept it. */
  static open(options: ConnectionOptions): Promise<ServerConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: options.host, port: options.port });
      const onError = (err: Error) => reject(err);
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve(new ServerConnection(socket, options));
      });
    });
  }

  /** Number of requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.length - this.head;
  }

  get isBroken(): boolean {
    return this.broken !== null;
  }

  /** Called once when the connection breaks (after pending requests were rejected). */
  onBroken(listener: (err: ConnectionBrokenError) => void): void {
    this.brokenListener = listener;
  }

  /**
   * Send one request. `payloadFor(id)` returns the request's JSON text for the
   * id this connection assigns, so callers can splice pre-serialised messages in.
   */
  request(payloadFor: (id: number) => string): Promise<ServerReply> {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.nextId++;
    const frame = encodeFrame(payloadFor(id));
    return new Promise((resolve, reject) => {
      if (this.inFlight === 0) this.headSince = performance.now();
      this.pending.push({ id, resolve, reject });
      this.socket.write(frame);
    });
  }

  /** Close the socket; pending requests are rejected as `closed`. */
  close(): void {
    this.break('closed', 'closed by the worker');
  }

  private onPayload(payload: Buffer): void {
    if (this.broken) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload.toString('utf8'));
    } catch {
      this.break('bad-frame', 'reply payload is not JSON');
      return;
    }
    if (parsed === null || typeof parsed !== 'object' || !isReply(parsed as Record<string, unknown>)) {
      this.break('bad-frame', 'reply payload is not a reply object');
      return;
    }
    const reply = parsed as ServerReply;
    const entry = this.pending[this.head];
    if (entry === undefined || reply.Id !== entry.id) {
      // A reply we did not ask for, or -3 for a frame the server could not read: the stream is out of step.
      this.break('out-of-order', `expected reply to request ${entry?.id ?? 'none'}, got Id ${reply.Id} (Code ${reply.Code})`);
      return;
    }
    this.pending[this.head++] = undefined as unknown as Pending;
    if (this.head > 1024 && this.head * 2 > this.pending.length) {
      this.pending.splice(0, this.head);
      this.head = 0;
    }
    this.headSince = performance.now();
    entry.resolve(reply);
  }

  private checkDeadline(): void {
    if (this.inFlight > 0 && performance.now() - this.headSince > this.options.requestTimeoutMs) {
      this.break('timeout', `no reply to request ${this.pending[this.head]!.id} within ${this.options.requestTimeoutMs} ms`);
    }
  }

  private break(reason: BrokenReason, detail: string): void {
    if (this.broken) return;
    const err = new ConnectionBrokenError(reason, detail);
    this.broken = err;
    clearInterval(this.watchdog);
    this.socket.destroy();
    const pending = this.pending.slice(this.head);
    this.pending.length = 0;
    this.head = 0;
    for (const p of pending) p.reject(err);
    // Replies decoded from the same chunk settle in microtasks queued before this point: let them run first,
    // so the owner never counts an answered request as lost.
    queueMicrotask(() => this.brokenListener(err));
  }
}
