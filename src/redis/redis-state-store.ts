/**
 * Shard state in Redis behind the StateStore interface (src/state/state-store.ts): a unit is a
 * shard, and a commit is ONE Lua script that, for every shard in it, checks the member's fencing
 * token and validates every key it will write, and only then appends the outputs and error records
 * (XADD), applies the state changes (HSET/HDEL) and acknowledges the entries (XACK). A script is
 * not a transaction: Redis stops it at the first refused command and keeps what ran before, so
 * nothing that can be refused comes after the first write. Key layout: shard-keys.ts.
 */
import type { Redis } from 'ioredis';
import { LeaseLostError } from '../api/errors.js';
import { CHANGE_WIDTH, type StateChanges } from '../context/state-table.js';
import type { StateStore, StoredEntry } from '../state/state-store.js';
import { decodeStored, encodeStored, shardKeys } from './shard-keys.js';
import { retrying, type ConnectionOptions } from './redis-connection.js';
import { runScript } from './shard-scripts.js';

/** What a shard's commit carries besides state. */
export interface ShardMeta {
  /** The lease value ("MEMBER:TOKEN") the member holds the shard with: the fence. */
  lease: string;
  /** Unique per commit of a lease: a commit whose reply was lost and is sent again is applied once. */
  commitId: string;
  outputs: Buffer[];
  errors: Buffer[];
  /** Entry IDs of the shard's stream to acknowledge. */
  ids: string[];
}

/** Where the store lives: the source stream's name, the group, and the streams records go to (on the same server). */
export interface RedisStateStoreOptions {
  stream: string;
  group: string;
  outputsStream: string;
  errorsStream: string;
  /** How a commit is retried while the connection is away (its commit id makes a resent one apply once). */
  retry: Pick<ConnectionOptions, 'logger' | 'reconnectMinMs' | 'reconnectMaxMs'>;
}

/*
 * KEYS: outputs, errors, then per unit: lease, stream, models, commit, one hash per model changed.
 * ARGV: group, units, then per unit: lease value, commit id, models, outputs, errors, ids; then per
 * model its name and number of changes; then the outputs, errors, ids, and the changes as
 * (S|D, key, value) triples, model after model.
 */
const lua = `
local function wrongType(key, want)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= want then
    return redis.error_reply('PYSTAGE_WRONGTYPE key "' .. key .. '" holds a ' .. t .. ', not a ' .. want .. '; nothing was written')
  end
  return nil
end
local bad = wrongType(KEYS[1], 'stream') or wrongType(KEYS[2], 'stream')
if bad then return bad end
local units = tonumber(ARGV[2])
local plans = {}
local lost = {}
local k, a = 3, 3
for u = 1, units do
  local p = { lease = KEYS[k], stream = KEYS[k + 1], models = KEYS[k + 2], commit = KEYS[k + 3] }
  local value, id = ARGV[a], ARGV[a + 1]
  local nModels, nOut, nErr, nIds = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  a = a + 6
  p.id = id
  p.names, p.counts, p.hashes = {}, {}, {}
  for j = 1, nModels do
    p.names[j], p.counts[j], p.hashes[j] = ARGV[a], tonumber(ARGV[a + 1]), KEYS[k + 3 + j]
    a = a + 2
  end
  k = k + 4 + nModels
  p.out, p.nOut = a, nOut
  a = a + nOut
  p.err, p.nErr = a, nErr
  a = a + nErr
  p.ids, p.nIds = a, nIds
  a = a + nIds
  p.changes = a
  for j = 1, nModels do a = a + 3 * p.counts[j] end
  if redis.call('GET', p.lease) ~= value then
    lost[#lost + 1] = u - 1
  elseif redis.call('GET', p.commit) == id then
    p.done = true
  end
  bad = wrongType(p.stream, 'stream') or wrongType(p.models, 'set') or wrongType(p.commit, 'string')
  if bad then return bad end
  for j = 1, nModels do
    bad = wrongType(p.hashes[j], 'hash')
    if bad then return bad end
  end
  plans[u] = p
end
if #lost > 0 then return {0, lost} end
local acked = 0
for u = 1, units do
  local p = plans[u]
  if not p.done then
    for i = p.out, p.out + p.nOut - 1 do redis.call('XADD', KEYS[1], '*', 'data', ARGV[i]) end
    for i = p.err, p.err + p.nErr - 1 do redis.call('XADD', KEYS[2], '*', 'data', ARGV[i]) end
    local c = p.changes
    for j = 1, #p.names do
      if p.counts[j] > 0 then redis.call('SADD', p.models, p.names[j]) end
      for _ = 1, p.counts[j] do
        if ARGV[c] == 'S' then redis.call('HSET', p.hashes[j], ARGV[c + 1], ARGV[c + 2]) else redis.call('HDEL', p.hashes[j], ARGV[c + 1]) end
        c = c + 3
      end
    end
    local i, last = p.ids, p.ids + p.nIds - 1
    while i <= last do
      local to = math.min(i + 999, last)
      acked = acked + redis.call('XACK', p.stream, ARGV[1], unpack(ARGV, i, to))
      i = to + 1
    end
    redis.call('SET', p.commit, p.id)
  end
end
return {1, acked}
`;

/** Shard state, outputs and acknowledgements in Redis, committed together under each shard's lease. */
export class RedisStateStore implements StateStore<ShardMeta> {
  constructor(private readonly redis: Redis, private readonly options: RedisStateStoreOptions) {}

  /** A shard's stored state (Redis keeps no commit meta of its own: the group's pending list is the checkpoint). */
  async load(unit: number): Promise<{ entries: StoredEntry[]; meta: ShardMeta | null }> {
    return { entries: await loadShardState(this.redis, this.options.stream, this.options.group, unit), meta: null };
  }

  /**
   * Commit every unit or none. Throws LeaseLostError (its `shards`) when a unit's lease is no longer the
   * one in its meta: then nothing at all was written, and the other units may be committed again alone.
   */
  async commit(units: { unit: number; changes: StateChanges; meta: ShardMeta }[]): Promise<void> {
    const { stream, group, outputsStream, errorsStream } = this.options;
    const keys = [outputsStream, errorsStream];
    // Unit after unit, in the order the script reads them: header, models, outputs, errors, ids, changes.
    const args: (string | number | Buffer)[] = [group, units.length];
    for (const { unit, changes, meta } of units) {
      const k = shardKeys(stream, group, unit);
      const byModel = lastChanges(changes);
      keys.push(k.lease, k.stream, k.models, k.commit);
      args.push(meta.lease, meta.commitId, byModel.size, meta.outputs.length, meta.errors.length, meta.ids.length);
      for (const [model, entries] of byModel) {
        keys.push(k.state(model));
        args.push(model, entries.size);
      }
      for (const r of meta.outputs) args.push(r);
      for (const r of meta.errors) args.push(r);
      for (const id of meta.ids) args.push(id);
      for (const entries of byModel.values()) for (const [key, stored] of entries) args.push(stored === null ? 'D' : 'S', key, stored ?? '');
    }
    const reply = await retrying(this.redis, `committing ${units.length} shard(s)`,
      () => runScript<[number, number[] | number]>(this.redis, 'commit', lua, keys, args), this.options.retry);
    if (reply[0] === 0) {
      const lost = (reply[1] as number[]).map((u) => units[u]!.unit);
      throw Object.assign(new LeaseLostError(`the lease of shard${lost.length > 1 ? 's' : ''} ${lost.join(', ')} is no longer this member's: its commit was refused and nothing of it was written`), { shards: lost });
    }
  }

  async close(): Promise<void> {}
}

/** The last change of each (model, key), as the hash value to store (null: delete), model by model. */
function lastChanges(changes: StateChanges): Map<string, Map<string, string | null>> {
  const out = new Map<string, Map<string, string | null>>();
  for (let c = 0; c + CHANGE_WIDTH - 1 < changes.length; c += CHANGE_WIDTH) {
    const model = changes[c] as string;
    const text = changes[c + 2] as string | null;
    const expiresAt = changes[c + 3] as number | null;
    let entries = out.get(model);
    if (entries === undefined) out.set(model, (entries = new Map()));
    const key = changes[c + 1] as string;
    // Map order is first insertion: re-inserting keeps a key where it was, which is fine (one value per key).
    entries.set(key, text === null ? null : encodeStored(text, expiresAt ?? null));
  }
  return out;
}

/** Every state entry of one shard (all models). */
export async function loadShardState(redis: Redis, stream: string, group: string, shard: number): Promise<StoredEntry[]> {
  const k = shardKeys(stream, group, shard);
  const models = (await redis.smembers(k.models)).sort();
  const entries: StoredEntry[] = [];
  for (const model of models) {
    let cursor = '0';
    do {
      const [next, flat] = await redis.hscan(k.state(model), cursor, 'COUNT', 1000);
      cursor = next;
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const { text, expiresAt } = decodeStored(flat[i + 1]!);
        entries.push({ model, key: flat[i]!, text, expiresAt });
      }
    } while (cursor !== '0');
  }
  return entries;
}
