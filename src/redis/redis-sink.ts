/**
 * Appends records to a stream, one entry per record with the record in field `data` (XADD,
 * pipelined). A write resolves only once Redis has every entry; a connection lost under it is
 * retried, which may store an entry twice (at least once), never zero times.
 */
import { Writable } from 'node:stream';
import type { ChainableCommander, Redis } from 'ioredis';
import { createLogger } from '../telemetry/logger.js';
import type { StageLogger } from '../telemetry/stage-logger.js';
import { redisDefaults } from '../api/options.js';
import { StageOutput, type StageRecord } from '../records/records.js';
import { closeConnection, connect, retrying, withFields } from './redis-connection.js';
import { RedisStreamError } from '../api/errors.js';
import { parseStreamUrl, type StreamUrl } from './redis-url.js';

/** Open a sink on `url` (`redis://HOST:PORT[/DB]/STREAM`). */
export function redisSink(url: string, options: { logger?: StageLogger } = {}): RedisSink {
  const parsed = parseStreamUrl(url, 'the sink');
  const logger = withFields(options.logger ?? createLogger('warn'), { sink: parsed.stream });
  const redis = connect(parsed, { name: `pystage-sink-${process.pid}`, logger, reconnectMinMs: redisDefaults.reconnectMinMs, reconnectMaxMs: redisDefaults.reconnectMaxMs });
  return new RedisSink(parsed, redis, logger, true);
}

/** A stream records are appended to. */
export class RedisSink {
  /** @internal Use redisSink; `owns` says whether closing the sink closes the connection. */
  constructor(readonly url: StreamUrl, readonly redis: Redis, private readonly logger: StageLogger, private readonly owns: boolean) {}

  /** Queue one XADD per record on a pipeline of this sink's server. */
  private addTo(batch: ChainableCommander, records: Buffer[]): void {
    for (const record of records) batch.xadd(this.url.stream, '*', 'data', record);
  }

  /** Append records; resolves once Redis has all of them. */
  async write(records: Buffer[]): Promise<void> {
    if (records.length === 0) return;
    await retrying(this.redis, `XADD to ${this.url.stream}`, async () => {
      const batch = this.redis.pipeline();
      this.addTo(batch, records);
      failOnReplyErrors(await batch.exec());
    }, { logger: this.logger, reconnectMinMs: redisDefaults.reconnectMinMs, reconnectMaxMs: redisDefaults.reconnectMaxMs });
  }

  /**
   * An object-mode Writable for stream.pipeline(): takes StageRecords (an output keeps its exact
   * bytes), Buffers or strings (stored as they are), or other objects (JSON.stringify). Its
   * callback fires once Redis has the entries, so the pipeline waits for Redis.
   */
  writable(): Writable {
    return new Writable({
      objectMode: true,
      writev: (chunks, callback) => {
        this.write(chunks.map((c) => recordBytes(c.chunk))).then(() => callback(), callback);
      },
      final: (callback) => {
        this.close().then(() => callback(), callback);
      },
    });
  }

  /** Close the connection (when the sink opened it). */
  async close(): Promise<void> {
    if (this.owns) await closeConnection(this.redis);
  }
}

/** A pipeline's or transaction's replies: throw the first failure (a ReplyError is final, a lost connection is retried). */
export function failOnReplyErrors(replies: [Error | null, unknown][] | null): void {
  if (replies === null) throw new Error('the transaction was aborted');
  for (const [err] of replies) {
    if (err) throw err;
  }
}

function recordBytes(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return Buffer.from(value);
  if (value instanceof StageOutput) {
    return Buffer.from(`{"offset":${value.offset},"key":${JSON.stringify(value.key)},"partition":${value.partition},"model":${JSON.stringify(value.model)},"output":${value.json}}`);
  }
  const text = JSON.stringify(value as StageRecord);
  if (text === undefined) throw new RedisStreamError(`cannot store ${String(value)} in a stream: it has no JSON form`);
  return Buffer.from(text);
}
