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
}

interface RedisValues {
  source?: string; group?: string; consumer?: string; sink?: string; errors?: string; 'claim-idle'?: string; 'max-deliveries'?: string; exclusive?: boolean; skip?: string;
}

/** The Redis flags, or null when --source is absent (and then no other Redis flag may be given). */
export function redisArgs(values: RedisValues, integer: (flag: string, text: string) => number): RedisCommand | null {
  if (values.source === undefined) {
    const stray = (['group', 'consumer', 'sink', 'claim-idle', 'max-deliveries', 'exclusive'] as const).find((f) => values[f] !== undefined);
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
  return {
    source: values.source,
    group: values.group,
    consumer: values.consumer,
    sink: values.sink ?? null,
    errors: values.errors ?? null,
    claimIdleMs: values['claim-idle'] === undefined ? undefined : integer('--claim-idle', values['claim-idle']),
    maxDeliveries: values['max-deliveries'] === undefined ? undefined : integer('--max-deliveries', values['max-deliveries']),
    exclusive: values.exclusive ?? false,
  };
}

function checkUrl(flag: string, text: string): void {
  try {
    parseStreamUrl(text, flag);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
