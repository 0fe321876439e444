/**
 * One turn's records and acknowledgements in one Lua script on the source's server. A script runs
 * atomically, and an error in `redis.call` stops it where it is: an XADD that Redis refuses
 * (say, the sink key holds a string) leaves the XACK unrun, so an entry is never acknowledged
 * without its records. (MULTI/EXEC would not do: it runs the XACK after a failed XADD.)
 */
import type { Redis } from 'ioredis';

const lua = `
local group = ARGV[1]
local outputs = tonumber(ARGV[2])
local errors = tonumber(ARGV[3])
local i = 4
for _ = 1, outputs do
  redis.call('XADD', KEYS[1], '*', 'data', ARGV[i])
  i = i + 1
end
for _ = 1, errors do
  redis.call('XADD', KEYS[2], '*', 'data', ARGV[i])
  i = i + 1
end
local acked = 0
while i <= #ARGV do
  local last = math.min(i + 999, #ARGV)
  acked = acked + redis.call('XACK', KEYS[3], group, unpack(ARGV, i, last))
  i = last + 1
end
return acked
`;

const defined = new WeakSet<Redis>();

/** What one store does: records for streams on this server (null: none here), then XACK of `ids`. */
export interface StoreCall {
  source: string;
  group: string;
  outputsStream: string | null;
  outputs: Buffer[];
  errorsStream: string | null;
  errors: Buffer[];
  ids: string[];
}

/** Run the store script (EVALSHA, loaded on first use and again after a server restart); resolves to the number acknowledged. */
export async function runStoreScript(redis: Redis, call: StoreCall): Promise<number> {
  if (!defined.has(redis)) {
    redis.defineCommand('pystageStoreTurn', { numberOfKeys: 3, lua });
    defined.add(redis);
  }
  const outputs = call.outputsStream === null ? [] : call.outputs;
  const errors = call.errorsStream === null ? [] : call.errors;
  const args: (string | Buffer | number)[] = [
    call.outputsStream ?? call.source, call.errorsStream ?? call.source, call.source,
    call.group, outputs.length, errors.length, ...outputs, ...errors, ...call.ids,
  ];
  const store = (redis as unknown as Record<string, (...a: unknown[]) => Promise<number>>).pystageStoreTurn!;
  return store.apply(redis, args);
}
