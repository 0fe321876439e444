/**
 * A stage fed by a consumer group: entries become messages, every output and error record goes
 * to its target, and an entry is acknowledged only after all of its records are stored.
 *
 * Completed ranges are stored as turns, one turn at a time (a group commit: what completes while
 * a turn is being stored goes in the next). A turn's records for line targets and for streams on
 * other servers go first; then, on the source's server, one Lua script holds the XADDs for streams
 * there and the XACK of the turn's entries (store-script.ts: atomic, and a refused XADD stops it
 * before the XACK). When the sink lives on the source's server (the usual setup), an entry's
 * outputs and its acknowledgement are stored together or not at all, so a stage killed at any
 * moment leaves no entry both output and pending. Turns never overtake each other, so outputs of
 * a key keep the order the stage produced them in.
 */
import type { Writable } from 'node:stream';
import { PoisonMessageError } from '../api/errors.js';
import type { LineBatch } from '../cli/line-reader.js';
import type { Stage } from '../api/stage.js';
import { stageEngine } from '../engine/stage-internals.js';
import { entryErrorRecord } from '../records/record-text.js';
import { EntryRecords, type TurnRecords } from './entry-records.js';
import { LineTarget, toTarget, type RecordTarget } from './record-target.js';
import { retrying } from './redis-connection.js';
import { RedisSink } from './redis-sink.js';
import type { RedisSource, RedisSourceStats } from './redis-source.js';
import { runStoreScript } from './store-script.js';
import { entriesBatch, type StreamEntry } from './stream-entry.js';

/** Records plus entries per store at most (one range may exceed it): bounds the arguments of one script call, and the records queued before the stage waits. */
const STORE_LIMIT = 4096;

/** Where a Redis run sends its records: a RedisSink, or JSON lines on a Writable. */
export interface RedisRunTargets {
  outputs: RedisSink | LineTarget | Writable;
  /** Default: JSON lines on stderr. */
  errors?: RedisSink | LineTarget | Writable;
}

/** Counters of a Redis run. */
export interface RedisRunStats extends RedisSourceStats {
  /** Output records stored. */
  out: number;
  /** Error records stored. */
  errors: number;
}

/**
 * Run `source` through `stage` until the source stops (call `source.stop()`, e.g. on a signal):
 * every entry read is processed, its records stored, and then acknowledged.
 */
export async function runRedisStage(stage: Stage, source: RedisSource, destinations: RedisRunTargets): Promise<RedisRunStats> {
  const targets: Targets = { outputs: toTarget(destinations.outputs), errors: toTarget(destinations.errors ?? process.stderr) };
  const ids = new Map<number, string>();
  let nextOffset = 0;
  const records = new EntryRecords((offset) => {
    const id = ids.get(offset)!;
    ids.delete(offset);
    return id;
  });
  const stats = { out: 0, errors: 0 };

  // The stage numbers the messages of a run 0, 1, 2, … in the order they are fed: so does this.
  async function* lines(): AsyncGenerator<LineBatch> {
    for (;;) {
      let entries = await source.next();
      if (entries === null) return;
      // An entry delivered this often may be what kills its stage: it becomes an error record instead.
      const poison = entries.filter((e) => e.deliveries > source.options.maxDeliveries);
      if (poison.length > 0) {
        const records = poison.map((e) => poisonRecord(e, source.options.maxDeliveries));
        await store(source, targets, { outputs: [], errors: records, done: [] }, poison.map((e) => e.id));
        stats.errors += records.length;
        entries = entries.filter((e) => e.deliveries <= source.options.maxDeliveries);
        if (entries.length === 0) continue;
      }
      for (const entry of entries) ids.set(nextOffset++, entry.id);
      yield entriesBatch(entries);
    }
  }

  // Group commit: one store in flight at a time (so turns reach Redis in completion order), and
  // whatever completes meanwhile goes in the next one, so the stage never waits for a round trip
  // unless STORE_LIMIT records are already queued.
  let storing: Promise<void> | null = null;
  let failure: unknown = null;
  const storeQueued = async () => {
    try {
      for (let turn = records.take(STORE_LIMIT); turn !== null; turn = records.take(STORE_LIMIT)) {
        await store(source, targets, turn, turn.done);
        stats.out += turn.outputs.length;
        stats.errors += turn.errors.length;
      }
    } catch (err) {
      failure ??= err;
      // Nothing more can be stored: stop reading, so the run ends and the failure is reported.
      source.stop();
    }
  };
  // Start storing unless a store is running; when one ends, whatever was queued meanwhile goes next.
  const kick = (): void => {
    if (storing !== null || records.size === 0 || failure !== null) return;
    storing = storeQueued().finally(() => {
      storing = null;
      kick();
    });
  };
  for await (const ranges of stageEngine(stage).processLines(lines())) {
    for (const range of ranges) records.add(range);
    kick();
    while (storing !== null && records.size >= STORE_LIMIT) await storing;
    if (failure !== null) throw failure;
  }
  while (storing !== null) await storing;
  if (failure !== null) throw failure;
  return { ...source.stats, ...stats };
}

/** The error record of an entry given up after too many deliveries (it never reached the stage: no offset, key or partition). */
function poisonRecord(entry: StreamEntry, max: number): Buffer {
  const error = new PoisonMessageError(`entry was delivered ${entry.deliveries} times without being acknowledged (more than maxDeliveries ${max}); each try may have stopped its stage, so it is given up`, { type: 'MaxDeliveries' });
  return entryErrorRecord(entry.id, entry.data!.toString('utf8'), error.toRecord());
}

interface Targets {
  outputs: RecordTarget;
  errors: RecordTarget;
}

/** Store a turn's records, then acknowledge its entries (together, where they share a server). */
async function store(source: RedisSource, targets: Targets, turn: TurnRecords, done: string[]): Promise<void> {
  const onSourceServer = (t: RecordTarget): t is RedisSink => t instanceof RedisSink && t.url.server === source.url.server;
  const elsewhere: Promise<void>[] = [];
  for (const [target, list] of [[targets.outputs, turn.outputs], [targets.errors, turn.errors]] as const) {
    if (list.length === 0 || onSourceServer(target)) continue;
    elsewhere.push(target.write(list));
  }
  await Promise.all(elsewhere);
  if (done.length === 0) return;
  await retrying(source.commands, `storing records and acknowledging ${done.length} entries`, () => runStoreScript(source.commands, {
    source: source.stream, group: source.options.group, ids: done,
    outputsStream: onSourceServer(targets.outputs) ? targets.outputs.url.stream : null, outputs: turn.outputs,
    errorsStream: onSourceServer(targets.errors) ? targets.errors.url.stream : null, errors: turn.errors,
  }), { ...source.options, logger: source.logger });
  source.acked(done);
}
