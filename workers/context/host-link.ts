/**
 * The worker's end of the channel to the main thread, where the host's handlers and the shared
 * cache live. A model's hostRequest frame is forwarded here as a HostAsk; the main thread answers
 * with a HostAnswer (src/context/host-services.ts), which goes back to the server as a hostReply.
 */
import type { MessagePort } from 'node:worker_threads';
import { scanObject } from '../../src/protocol/json-scan.js';
import type { HostAnswer, HostAsk } from '../../src/context/host-services.js';

/** Asks the main thread; one per worker thread (a replacement thread gets a new port). */
export class HostLink {
  private nextId = 1;
  private readonly waiting = new Map<number, (answer: HostAnswer) => void>();

  constructor(private readonly port: MessagePort) {
    port.on('message', (answer: HostAnswer) => {
      const resolve = this.waiting.get(answer.id);
      this.waiting.delete(answer.id);
      resolve?.(answer);
    });
    // The pool keeps the thread alive; the port must not keep it from ending.
    port.unref();
  }

  /** Forward one request; resolves with the main thread's answer. */
  ask(request: Omit<HostAsk, 'id'>): Promise<HostAnswer> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.port.postMessage({ ...request, id } satisfies HostAsk);
    });
  }

  close(): void {
    for (const [id, resolve] of this.waiting) resolve({ id, ok: false, type: 'HostUnavailable', message: 'the partition is stopping' });
    this.waiting.clear();
    this.port.close();
  }
}

/** The fields of a hostRequest frame (docs/protocol.md, Host requests). */
export interface HostRequestFrame {
  seq: number;
  kind: HostAsk['kind'];
  name: string;
  /** Index of the running message within its request. */
  index: number;
  ttlMs: number | null;
  /** The payload's JSON text, as the server wrote it. */
  payload: string;
}

const PAYLOAD = [Buffer.from('Payload')];

/** Read a hostRequest frame's payload; throws if it is not one. */
export function parseHostRequest(frame: Buffer): HostRequestFrame {
  const spans = new Int32Array(2);
  scanObject(frame, 0, frame.length, PAYLOAD, spans);
  const r = JSON.parse(frame.toString('utf8')) as { Seq?: unknown; Kind?: unknown; Name?: unknown; Index?: unknown; TtlMs?: unknown };
  if (!Number.isInteger(r.Seq) || typeof r.Kind !== 'string' || typeof r.Name !== 'string' || spans[0]! < 0) {
    throw new Error('not a hostRequest frame');
  }
  return {
    seq: r.Seq as number, kind: r.Kind as HostAsk['kind'], name: r.Name,
    index: Number.isInteger(r.Index) ? r.Index as number : 0,
    ttlMs: Number.isInteger(r.TtlMs) ? r.TtlMs as number : null,
    payload: frame.toString('utf8', spans[0]!, spans[1]!),
  };
}
