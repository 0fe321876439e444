/** The Redis Streams flags of `pystage run`: checked together, so a half-given setup is a usage error. */
import { UsageError } from '../api/errors.js';
import { isStreamUrl, parseStreamUrl } from './redis-url.js';

export const redisUsage = `Redis Streams (instead of stdin/stdout; see "Redis Streams" in the README):
  --source redis://HOST:PORT[/DB]/STREAM  read the stream as a member of a consumer group
  --group GROUP               the consumer group (created at ID 0 if missing); required with --source
  --consumer NAME             this stage's name in the group (default: HOSTNAME-PID)
  --sink redis://…/STREAM     append each output record to a stream (default: stdout)
  --claim-idle MS             take over entries other consumers left pending this long (default: 30000)
  --max-deliveries N          an entry read back or claimed after more than N deliveries becomes an error record (default: 10)
  --shards N                  shard mode: read the streams STREAM.0 … STREAM.{N-1} as one member of many; each shard
                              is owned by one member at a time (a lease), is partition i of the stage, keeps its
                              state in Redis, and commits outputs, errors, state and acks in one fenced script
                              (exactly once; --sink and --errors must be streams on the source's server)
  --lease-ms MS               shard mode: how long a shard stays owned without renewal (default: 10000)
  --exclusive                 the group's only consumer: take over all its pending entries at start, never claim
                              (a stream per shard, one stage per stream: per-key order holds across stages)
  Records carry "id", the source entry's ID. SIGTERM: finish, acknowledge, exit 0; SIGINT: the same, exit 130.`;

/** The Redis part of a run command. */
export interface RedisCommand {
  source: string;
  group: string;
  consumer: string | undefined;
  sink: string | null;
  /** A stream URL or a file (appended to). Null: stderr. */
  errors: string | null;
  claimIdleMs: number | undefined;
  maxDeliveries: number | undefined;
  exclusive: boolean;
  /** Shard mode: the number of shard streams; null otherwise. */
  shards: number | null;
  leaseMs: number | undefined;
}

interface RedisValues {
  source?: string; group?: string; consumer?: string; sink?: string; errors?: string; 'claim-idle'?: string; 'max-deliveries'?: string; exclusive?: boolean; skip?: string;
  shards?: string; 'lease-ms'?: string; partitions?: string; ordered?: boolean;
}

/** The Redis flags, or null when --source is absent (and then no other Redis flag may be given). */
export function redisArgs(values: RedisValues, integer: (flag: string, text: string) => number): RedisCommand | null {
  if (values.source === undefined && values.shards !== undefined) throw new UsageError('--shards needs --source redis://HOST:PORT[/DB]/STREAM');
  if (values.source === undefined) {
    const stray = (['group', 'consumer', 'sink', 'claim-idle', 'max-deliveries', 'exclusive', 'shards', 'lease-ms'] as const).find((f) => values[f] !== undefined);
    if (stray) throw new UsageError(`--${stray} needs --source redis://HOST:PORT[/DB]/STREAM`);
    if (values.errors !== undefined && isStreamUrl(values.errors)) throw new UsageError('--errors with a stream URL needs --source redis://HOST:PORT[/DB]/STREAM');
    return null;
  }
  // The group remembers what was read; there is no line count to resume from.
  if (values.skip !== undefined) throw new UsageError('--skip has no meaning with --source: the consumer group resumes by itself');
  if (values.group === undefined || values.group === '') throw new UsageError('--source needs --group GROUP: the consumer group this stage reads as');
  if (values.consumer === '') throw new UsageError('--consumer must not be empty');
  checkUrl('--source', values.source);
  if (values.sink !== undefined) checkUrl('--sink', values.sink);
  if (values.errors !== undefined && isStreamUrl(values.errors)) checkUrl('--errors', values.errors);
  if (values.exclusive && values['claim-idle'] !== undefined) throw new UsageError('--exclusive never claims: drop --claim-idle');
  const shards = values.shards === undefined ? null : integer('--shards', values.shards);
  if (shards !== null) checkShardMode(values, shards);
  else if (values['lease-ms'] !== undefined) throw new UsageError('--lease-ms needs --shards N (shard mode)');
  return {
    source: values.source,
    group: values.group,
    consumer: values.consumer,
    sink: values.sink ?? null,
    errors: values.errors ?? null,
    claimIdleMs: values['claim-idle'] === undefined ? undefined : integer('--claim-idle', values['claim-idle']),
    maxDeliveries: values['max-deliveries'] === undefined ? undefined : integer('--max-deliveries', values['max-deliveries']),
    exclusive: values.exclusive ?? false,
    shards,
    leaseMs: values['lease-ms'] === undefined ? undefined : integer('--lease-ms', values['lease-ms']),
  };
}

/**
 * Shard mode commits every record with its entry's acknowledgement in one script on the source's
 * server: records anywhere else could not be part of it, so they are refused rather than left at least once.
 */
function checkShardMode(values: RedisValues, shards: number): void {
  if (shards > 256) throw new UsageError(`--shards must be at most 256 (one partition, so one Python server, per shard); got ${shards}`);
  for (const flag of ['exclusive', 'claim-idle', 'max-deliveries'] as const) {
    if (values[flag] !== undefined) throw new UsageError(`--${flag} does not apply with --shards: each shard's owner takes over all of its pending entries`);
  }
  if (values.partitions !== undefined) throw new UsageError('--partitions does not apply with --shards: partition i is shard i, so there are N partitions');
  if (values.ordered) throw new UsageError('--ordered does not apply with --shards: order holds per shard (per key), never across shards');
  const server = parseStreamUrl(values.source!, '--source').server;
  for (const flag of ['sink', 'errors'] as const) {
    const text = values[flag];
    if (text === undefined || !isStreamUrl(text)) {
      throw new UsageError(`--shards needs --${flag} redis://…/STREAM on the source's server: records, state and acknowledgements are committed in one script there`);
    }
    if (parseStreamUrl(text, `--${flag}`).server !== server) {
      throw new UsageError(`--${flag} ${text} is on another server than --source: in shard mode every record is committed with its acknowledgement in one script on the source's server`);
    }
  }
  if (values['lease-ms'] !== undefined && Number(values['lease-ms']) < 100) throw new UsageError('--lease-ms must be at least 100');
}

function checkUrl(flag: string, text: string): void {
  try {
    parseStreamUrl(text, flag);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
