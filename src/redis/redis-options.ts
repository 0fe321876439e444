/** Options of the Redis Streams source, validated once; defaults live in `redisDefaults` (src/api/options.ts). */
import { hostname } from 'node:os';
import { InvalidOptionError } from '../api/errors.js';
import { redisDefaults } from '../api/options.js';

/** What `redisSource` accepts besides the URL. Only `group` is required. */
export interface RedisSourceOptions {
  /** The consumer group (created at ID 0 with MKSTREAM when missing). */
  group: string;
  /** This consumer's name in the group. Default: `HOSTNAME-PID`. */
  consumer?: string;
  /** Claim entries idle longer than this from other consumers (XAUTOCLAIM). Default 30 s. */
  claimIdleMs?: number;
  /** Entries per read. Default 512. */
  readCount?: number;
  /** Longest wait of one blocking read. Default 2 s. */
  blockMs?: number;
  /** This stage is the group's only consumer: take over all pending entries at start, never claim later. */
  exclusive?: boolean;
  /** An entry delivered more often than this (it may crash its stage each time) becomes an error record. Default 10. */
  maxDeliveries?: number;
  /** Reconnect backoff: first delay and cap, in ms. Defaults 50 and 2000. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

export type ResolvedRedisSourceOptions = Required<RedisSourceOptions>;

/** Validate and fill in defaults; throws InvalidOptionError naming the bad option. */
export function resolveRedisSourceOptions(options: RedisSourceOptions): ResolvedRedisSourceOptions {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('redisSource needs an options object with at least `group`');
  if (typeof options.group !== 'string' || options.group === '') throw new InvalidOptionError('`group` must be a non-empty string: the consumer group to read as');
  const consumer = options.consumer ?? `${hostname()}-${process.pid}`;
  if (typeof consumer !== 'string' || consumer === '') throw new InvalidOptionError('`consumer` must be a non-empty string');
  const resolved: ResolvedRedisSourceOptions = {
    group: options.group,
    consumer,
    claimIdleMs: options.claimIdleMs ?? redisDefaults.claimIdleMs,
    readCount: options.readCount ?? redisDefaults.readCount,
    blockMs: options.blockMs ?? redisDefaults.blockMs,
    exclusive: options.exclusive ?? redisDefaults.exclusive,
    maxDeliveries: options.maxDeliveries ?? redisDefaults.maxDeliveries,
    reconnectMinMs: options.reconnectMinMs ?? redisDefaults.reconnectMinMs,
    reconnectMaxMs: options.reconnectMaxMs ?? redisDefaults.reconnectMaxMs,
  };
  for (const name of ['claimIdleMs', 'readCount', 'blockMs', 'maxDeliveries', 'reconnectMinMs', 'reconnectMaxMs'] as const) {
    const value = resolved[name];
    if (!Number.isInteger(value) || value < 1 || value > 86_400_000) {
      throw new InvalidOptionError(`${name} must be an integer from 1 to 86400000; got ${JSON.stringify(value)}`);
    }
  }
  if (resolved.reconnectMaxMs < resolved.reconnectMinMs) throw new InvalidOptionError('reconnectMaxMs must be at least reconnectMinMs');
  if (typeof resolved.exclusive !== 'boolean') throw new InvalidOptionError('exclusive must be true or false');
  return resolved;
}
