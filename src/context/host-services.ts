/**
 * The host's side of what a model can reach beyond its message: the handlers its
 * `self.context.request(name, payload)` calls, and the shared cache behind `self.context.cache`.
 * Both live in the main thread; each partition worker talks to them over a MessagePort of its own
 * (a replacement worker thread gets a new one). Handler failures are answers, never crashes: the
 * model gets a `pystage.HostRequestError` with the handler's message.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { CacheValueTooLargeError, HandlerFailure } from '../api/errors.js';

import type { StageLogger } from '../telemetry/stage-logger.js';
import type { SharedCache } from './shared-cache.js';

/** What a handler knows about the request: which partition and model asked, for which message key. */
export interface HostRequestContext {
  partition: number;
  model: string;
  /** The key of the message being executed (null when it has none). */
  key: unknown;
}

/** A host request handler: `(payload, context) => value | Promise<value>`; the value must be JSON. */
export type HostHandler = (payload: any, context: HostRequestContext) => unknown;

/** A model's request as the worker forwards it (payload as JSON text). */
export interface HostAsk {
  id: number;
  kind: 'call' | 'cache.get' | 'cache.set' | 'cache.delete';
  name: string;
  payload: string;
  ttlMs: number | null;
  partition: number;
  model: string;
  key: unknown;
}

/** What the host says: a JSON text, or why there is none. */
export type HostResult = { ok: true; json: string } | { ok: false; type: string; message: string };

/** The answer to the HostAsk with the same id. */
export type HostAnswer = HostResult & { id: number };

/** Counters of host requests, in `stage.stats().hostRequests`. */
export interface HostRequestStats {
  calls: number;
  failed: number;
  cacheOps: number;
}

/** The handlers and cache of one stage, and the ports of its partitions. */
export class HostServices {
  private readonly ports = new Set<MessagePort>();
  private readonly counts: HostRequestStats = { calls: 0, failed: 0, cacheOps: 0 };

  constructor(private readonly handlers: Record<string, HostHandler>, readonly cache: SharedCache, private readonly logger: StageLogger) {}

  /** A new port for a partition's (new) worker thread; it closes when that thread ends. */
  connect(): MessagePort {
    const { port1, port2 } = new MessageChannel();
    port1.on('message', (ask: HostAsk) => {
      void this.answer(ask).then((answer) => port1.postMessage(answer));
    });
    port1.once('close', () => this.ports.delete(port1));
    port1.unref();
    this.ports.add(port1);
    return port2;
  }

  stats(): HostRequestStats {
    return { ...this.counts };
  }

  close(): void {
    for (const port of this.ports.values()) port.close();
    this.ports.clear();
  }

  /** Answer one request; never throws. */
  async answer(ask: HostAsk): Promise<HostAnswer> {
    const { id } = ask;
    try {
      if (ask.kind === 'call') {
        this.counts.calls++;
        return { id, ok: true, json: await this.call(ask) };
      }
      this.counts.cacheOps++;
      const cache = this.cache;
      if (ask.kind === 'cache.get') {
        const text = cache.getText(ask.name);
        return { id, ok: true, json: text === undefined ? '[]' : `[${text}]` };
      }
      if (ask.kind === 'cache.set') {
        cache.setText(ask.name, ask.payload, ask.ttlMs);
        return { id, ok: true, json: 'null' };
      }
      if (ask.kind === 'cache.delete') return { id, ok: true, json: cache.delete(ask.name) ? 'true' : 'false' };
      return { id, ok: false, type: 'UnknownRequestKind', message: `unknown host request kind "${String(ask.kind)}"` };
    } catch (err) {
      this.counts.failed++;
      const e = err as { name?: string; message?: string };
      const type = err instanceof HandlerFailure ? err.type : err instanceof CacheValueTooLargeError ? 'CacheValueTooLarge' : 'HandlerError';
      return { id, ok: false, type, message: typeof e?.message === 'string' ? e.message : String(err) };
    }
  }

  private async call(ask: HostAsk): Promise<string> {
    const handler = Object.hasOwn(this.handlers, ask.name) ? this.handlers[ask.name] : undefined;
    if (handler === undefined) {
      const known = Object.keys(this.handlers);
      throw new HandlerFailure('UnknownHandler', `no host handler named "${ask.name}" (handlers: ${known.length > 0 ? known.join(', ') : 'none'}); give it to createStage({ handlers }) or export it from the --handlers file`);
    }
    const value = await handler(JSON.parse(ask.payload), { partition: ask.partition, model: ask.model, key: ask.key });
    let json: string | undefined;
    try {
      json = JSON.stringify(value === undefined ? null : value);
    } catch (err) {
      throw new HandlerFailure('BadHandlerResult', `handler "${ask.name}" returned a value that is not JSON: ${(err as Error).message}`);
    }
    if (json === undefined) throw new HandlerFailure('BadHandlerResult', `handler "${ask.name}" returned a value that is not JSON`);
    this.logger.debug({ handler: ask.name, partition: ask.partition }, 'host request answered');
    return json;
  }
}

