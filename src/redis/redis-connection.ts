/**
 * A connection to Redis that survives the server going away: ioredis reconnects with a capped,
 * jittered exponential backoff, and commands wait for the connection instead of failing
 * (maxRetriesPerRequest: null). `onReconnect` runs each time the connection is ready again,
 * so the reader can look for entries whose reply was lost with the old connection.
 */
import { Redis, ReplyError } from 'ioredis';
import type { StageLogger } from '../telemetry/stage-logger.js';
import { RedisStreamError } from '../api/errors.js';
import type { StreamUrl } from './redis-url.js';

export interface ConnectionOptions {
  name: string;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  logger: StageLogger;
  onReconnect?: () => void;
}

/** Backoff delay before attempt `n` (1-based): doubling from `min` up to `max`, with up to 50% jitter so stages do not reconnect in lockstep. */
export function backoffMs(n: number, min: number, max: number): number {
  const base = Math.min(max, min * 2 ** Math.min(n - 1, 20));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

/** Open a connection to the server of `url`. */
export function connect(url: StreamUrl, options: ConnectionOptions): Redis {
  const { logger } = options;
  const redis = new Redis({
    host: url.host, port: url.port, db: url.db, username: url.username, password: url.password,
    connectionName: options.name,
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    autoResendUnfulfilledCommands: true,
    retryStrategy: (times) => backoffMs(times, options.reconnectMinMs, options.reconnectMaxMs),
  });
  let readies = 0;
  let lastError = '';
  redis.on('ready', () => {
    if (readies++ > 0) {
      logger.warn({ connection: options.name, server: url.server }, 'reconnected to Redis');
      options.onReconnect?.();
    }
  });
  redis.on('error', (err: Error) => {
    // ioredis reports every failed attempt; one line per distinct error is enough.
    if (err.message !== lastError) logger.warn({ connection: options.name, server: url.server, err: err.message }, 'Redis connection error; reconnecting with backoff');
    lastError = err.message;
  });
  redis.on('ready', () => { lastError = ''; });
  return redis;
}

/** True for an error Redis itself replied (retrying the same command gives the same answer). */
export function isReplyError(err: unknown): boolean {
  return err instanceof ReplyError || (err as { name?: string })?.name === 'ReplyError';
}

/**
 * Run `attempt` until it succeeds. A reply error from Redis is final; anything else (a connection
 * lost under a pipeline or transaction, which ioredis rejects instead of resending) is retried
 * with backoff, so a write is never given up while the stage runs. A closed client is final too.
 */
export async function retrying<T>(
  redis: Redis,
  what: string,
  attempt: () => Promise<T>,
  options: Pick<ConnectionOptions, 'logger' | 'reconnectMinMs' | 'reconnectMaxMs'>,
): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (isReplyError(err)) throw new RedisStreamError(`Redis refused ${what}: ${(err as Error).message}`);
      if (redis.status === 'end') throw new RedisStreamError(`${what} failed: the Redis client is closed (${(err as Error).message})`);
      const delay = backoffMs(n, options.reconnectMinMs, options.reconnectMaxMs);
      options.logger.warn({ err: (err as Error).message, attempt: n, delayMs: delay }, `${what} failed; retrying`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/** Close a connection: politely (QUIT, after the replies in flight) when connected, at once when not (QUIT would wait for a server that is away). */
export async function closeConnection(redis: Redis): Promise<void> {
  if (redis.status !== 'ready') {
    redis.disconnect();
    return;
  }
  await redis.quit().catch(() => redis.disconnect());
}

/** A logger that adds `fields` to every line (the stage's logger has no child()). */
export function withFields(logger: StageLogger, fields: object): StageLogger {
  const bind = (method: keyof StageLogger) => (more: object, message?: string) => logger[method]({ ...fields, ...more }, message);
  return { trace: bind('trace'), debug: bind('debug'), info: bind('info'), warn: bind('warn'), error: bind('error'), fatal: bind('fatal') };
}
