/**
 * Host requests: a model asks the host (a handler, the cache) while the head request runs; the worker
 * forwards it over its HostLink and sends the answer back on the connection it came from.
 */
import { encodeFrame } from '../../src/protocol/index.js';
import { hostReplyPayload } from '../../src/protocol/requests.js';
import type { HostResult } from '../../src/context/host-services.js';
import { parseHostRequest, type HostLink } from '../context/host-link.js';
import type { ServerConnection } from '../server/server-connection.js';
import type { Operation } from './exec-plan.js';

/** Forward one host request (`link` null: the partition has no host) and answer it on `connection`. */
export async function forwardHostRequest(
  link: HostLink | null, partition: number, maxFrameBytes: number,
  connection: ServerConnection, payload: Buffer, running: Operation | undefined,
): Promise<void> {
  let seq = 0;
  let answer: HostResult;
  try {
    const request = parseHostRequest(payload);
    seq = request.seq;
    const context = running?.context?.(request.index) ?? { model: '', key: null };
    answer = link === null
      ? { ok: false, type: 'HostRequestsDisabled', message: 'this partition has no host to ask' }
      : await link.ask({ kind: request.kind, name: request.name, payload: request.payload, ttlMs: request.ttlMs, partition, model: context.model, key: context.key });
  } catch (err) {
    answer = { ok: false, type: 'BadHostRequest', message: (err as Error).message };
  }
  let frame: Buffer;
  try {
    frame = encodeFrame(hostReplyPayload(seq, answer), maxFrameBytes, connection.checksum);
  } catch (err) {
    // An answer too big for a frame fails the model's request, not the connection.
    frame = encodeFrame(hostReplyPayload(seq, { ok: false, type: 'HostAnswerTooLarge', message: (err as Error).message }), maxFrameBytes, connection.checksum);
  }
  connection.answerHost(frame);
}
