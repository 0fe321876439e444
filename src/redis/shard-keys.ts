/**
 * Where shard mode keeps things in Redis. Shard i of stream S read by group G:
 *
 *   S.i                          the shard's stream (producers XADD there)
 *   pystage:{S.i}:G:lease        "MEMBER:TOKEN", PX leaseMs: who owns the shard now
 *   pystage:{S.i}:G:token        INCR counter: the fencing token of each new owner
 *   pystage:{S.i}:G:models       set: the models that have state in this shard
 *   pystage:{S.i}:G:commit       the id of the last commit applied ("MEMBER:TOKEN:SEQ")
 *   pystage:{S.i}:G:state:MODEL  hash: key -> the JSON text the model stored ("~MS~" first when it expires)
 *   pystage:{S}:G:members        sorted set: member -> when its heartbeat expires (Redis time, ms)
 *
 * Every key of a shard carries the hash tag `{S.i}`, which is also the whole name of its stream,
 * so in a Redis Cluster they would share a slot; the sink streams, shared by every shard, would not.
 */
import { fnv1a } from '../engine/partitioner.js';

/** The shard of a key: FNV-1a 32 over its UTF-8 text, modulo the number of shards (the stage's own partitioner). */
export function shardOf(key: string, shards: number): number {
  if (!Number.isInteger(shards) || shards < 1) throw new RangeError(`shards must be a positive integer; got ${shards}`);
  return fnv1a(key) % shards;
}

/** The keys of one shard. */
export interface ShardKeys {
  stream: string;
  lease: string;
  token: string;
  models: string;
  /** The id of the last commit applied (a commit sent again after a lost reply is applied once). */
  commit: string;
  /** The hash holding one model's state in this shard. */
  state(model: string): string;
}

export function shardKeys(stream: string, group: string, shard: number): ShardKeys {
  const tag = `pystage:{${stream}.${shard}}:${group}`;
  return {
    stream: `${stream}.${shard}`,
    lease: `${tag}:lease`,
    token: `${tag}:token`,
    models: `${tag}:models`,
    commit: `${tag}:commit`,
    state: (model) => `${tag}:state:${model}`,
  };
}

/** The membership set of a group's shard members. */
export function membersKey(stream: string, group: string): string {
  return `pystage:{${stream}}:${group}:members`;
}

/** A lease's value: the member and its fencing token (member names may hold ':'; the token is after the last one). */
export function leaseValue(member: string, token: number): string {
  return `${member}:${token}`;
}

/** A state entry as a hash value: its text, behind "~MS~" when it expires at MS (JSON text never starts with "~"). */
export function encodeStored(text: string, expiresAt: number | null): string {
  return expiresAt === null ? text : `~${expiresAt}~${text}`;
}

export function decodeStored(value: string): { text: string; expiresAt: number | null } {
  if (!value.startsWith('~')) return { text: value, expiresAt: null };
  const end = value.indexOf('~', 1);
  return { text: value.slice(end + 1), expiresAt: Number(value.slice(1, end)) };
}
