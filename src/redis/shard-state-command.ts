/**
 * `pystage state redis://HOST:PORT[/DB]/STREAM --group G --shards N [--model NAME]`: the state shard
 * members stored, as JSON lines `{"shard":S,"model":M,"key":K,"value":V}` (V the stored JSON text,
 * spliced in byte for byte), shard by shard, models and keys sorted. Read-only; entries whose TTL
 * has passed are left out.
 */
import type { Writable } from 'node:stream';
import { createLogger } from '../telemetry/logger.js';
import { closeConnection, connect } from './redis-connection.js';
import { loadShardState } from './redis-state-store.js';
import { parseStreamUrl } from './redis-url.js';

export async function printShardState(source: string, group: string, shards: number, model: string | null, out: Writable): Promise<number> {
  const url = parseStreamUrl(source, 'pystage state');
  const redis = connect(url, { name: 'pystage-state', reconnectMinMs: 50, reconnectMaxMs: 2000, logger: createLogger('error') });
  // A server that is not there is an error here, not a wait.
  redis.options.maxRetriesPerRequest = 1;
  let lines = 0;
  try {
    for (let shard = 0; shard < shards; shard++) {
      const entries = (await loadShardState(redis, url.stream, group, shard))
        .filter((e) => (model === null || e.model === model) && (e.expiresAt === null || e.expiresAt > Date.now()))
        .sort((a, b) => (a.model === b.model ? (a.key < b.key ? -1 : a.key > b.key ? 1 : 0) : a.model < b.model ? -1 : 1));
      const text = entries.map((e) => `{"shard":${shard},"model":${JSON.stringify(e.model)},"key":${JSON.stringify(e.key)},"value":${e.text}}\n`).join('');
      if (text !== '' && !out.write(text)) await new Promise((resolve) => out.once('drain', resolve));
      lines += entries.length;
    }
  } finally {
    await closeConnection(redis);
  }
  return lines;
}
