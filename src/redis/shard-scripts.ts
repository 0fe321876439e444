/**
 * The Lua scripts of shard mode's leases, membership and reads. Every one that touches a shard's
 * entries checks the caller's lease first, in the same atomic step: a member that lost a shard
 * (paused past its lease, cut off) can neither read new entries of it into its pending list nor
 * take the group's pending entries over, so the new owner's takeover sees every entry in flight.
 */
import type { Redis } from 'ioredis';

/** KEYS lease, token; ARGV member, leaseMs. The new fencing token, or 0 when the shard is owned. */
const acquire = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. t, 'PX', ARGV[2])
return t
`;

/** KEYS leases; ARGV leaseMs, then each lease's expected value. Per lease 1 (renewed) or 0 (not ours). */
const renew = `
local out = {}
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i + 1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
`;

/** KEYS lease; ARGV value. 1 when it was ours and is gone now. */
const release = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * KEYS members; ARGV member, ttlMs, leave. Expired members are dropped (by Redis' clock, so members'
 * clocks need not agree), this one is renewed (or removed), and the live members are returned.
 */
const heartbeat = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[3] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
end
return redis.call('ZRANGE', KEYS[1], 0, -1)
`;

/**
 * KEYS lease1, stream1, lease2, stream2, …; ARGV group, consumer, count, then per shard its lease
 * value and where to read from ('>' for new entries, an ID for own pending ones after it).
 * Per shard: {0} when the lease is not ours, else {1, entries}.
 */
const read = `
local out = {}
for s = 1, #KEYS / 2 do
  if redis.call('GET', KEYS[2 * s - 1]) ~= ARGV[2 + 2 * s] then
    out[s] = {0}
  else
    local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[2 * s], ARGV[3 + 2 * s])
    if r then out[s] = {1, r[1][2]} else out[s] = {1, {}} end
  end
end
return out
`;

/** KEYS lease, stream; ARGV group, consumer, value, cursor, count. {0} when not ours, else {1, XAUTOCLAIM reply}. */
const claim = `
if redis.call('GET', KEYS[1]) ~= ARGV[3] then return {0} end
return {1, redis.call('XAUTOCLAIM', KEYS[2], ARGV[1], ARGV[2], 0, ARGV[4], 'COUNT', ARGV[5], 'JUSTID')}
`;

export const shardScripts = { acquire, renew, release, heartbeat, read, claim } as const;
export type ShardScript = keyof typeof shardScripts;

const defined = new WeakMap<Redis, Set<string>>();

/** Run a script (EVALSHA, loaded on first use and after a server restart); `buffers` keeps bulk replies as bytes. */
export function runScript<T>(redis: Redis, name: string, lua: string, keys: string[], args: (string | number | Buffer)[], buffers = false): Promise<T> {
  let names = defined.get(redis);
  if (names === undefined) defined.set(redis, (names = new Set()));
  const command = `pystage_${name}`;
  if (!names.has(command)) {
    redis.defineCommand(command, { lua });
    names.add(command);
  }
  const fn = (redis as unknown as Record<string, (...a: unknown[]) => Promise<T>>)[buffers ? `${command}Buffer` : command]!;
  return fn.call(redis, keys.length, ...keys, ...args);
}

/** Run one of the scripts above. */
export function shardScript<T>(redis: Redis, name: ShardScript, keys: string[], args: (string | number)[], buffers = false): Promise<T> {
  return runScript<T>(redis, name, shardScripts[name], keys, args, buffers);
}
