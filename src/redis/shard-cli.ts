/**
 * `pystage run --source redis://…/STREAM --group G --shards N`: one member of a shard group
 * (shard-run.ts). SIGTERM or SIGINT: stop reading, finish and commit what was read, hand every
 * shard over (its lease deleted, so another member takes it at once), exit 0 (130 for SIGINT).
 * A second signal leaves at once: the leases then expire, and what was not committed is run again
 * by the shards' next owners (nothing of it was emitted).
 */
import type { RunFlags } from '../cli/cli-args.js';
import { ProgressLine } from '../cli/progress-line.js';
import { redisDefaults, type StageOptions } from '../api/options.js';
import { createStage, type Stage } from '../api/stage.js';
import { stageEngine } from '../engine/stage-internals.js';
import type { RedisCommand } from './redis-args.js';
import { parseStreamUrl } from './redis-url.js';
import { ShardRun } from './shard-run.js';
import { registerShardMetrics } from './shard-metrics.js';
import { hostname } from 'node:os';
import { onStopSignals } from './stop-signals.js';

export async function runShardCli(options: StageOptions, command: RedisCommand, flags: RunFlags): Promise<number> {
  let stage: Stage;
  try {
    stage = await createStage({ ...options, ordered: false });
  } catch (err) {
    process.stderr.write(`pystage: the stage could not start: ${(err as Error).message}\n`);
    return 1;
  }
  const url = parseStreamUrl(command.source, '--source');
  const run = new ShardRun({
    url, group: command.group, member: command.consumer ?? `${hostname()}-${process.pid}`,
    shards: command.shards!, leaseMs: command.leaseMs ?? redisDefaults.leaseMs,
    outputsStream: parseStreamUrl(command.sink!).stream, errorsStream: parseStreamUrl(command.errors!).stream,
    readCount: redisDefaults.readCount, blockMs: redisDefaults.blockMs,
    reconnectMinMs: redisDefaults.reconnectMinMs, reconnectMaxMs: redisDefaults.reconnectMaxMs, logger: stage.logger,
  });
  const registry = stageEngine(stage).metricsRegistry;
  if (registry !== null) registerShardMetrics(registry, run);

  const stopped = onStopSignals(stage.logger, 'stopping: no more entries are read; entries in hand are finished and committed, then the shards are handed over', () => run.stop());
  let failed = false;
  const shardFields = () => ({ shards: { owned: run.owned, ...run.counts } });
  const progress = ProgressLine.onStderr(stage, flags.progress, flags.progressIntervalMs, shardFields);
  progress?.start();
  try {
    await run.run(stage);
  } catch (err) {
    process.stderr.write(`pystage: ${(err as Error).message}\n`);
    failed = true;
  } finally {
    progress?.stop();
    run.stop();
    await stage.close();
    await run.close();
  }
  const s = stage.stats();
  const r = run.stats;
  const summary = {
    ...s, seconds: Math.round(s.seconds * 1000) / 1000, msgPerSec: Math.round(s.msgPerSec),
    acked: r.acked, claimed: r.claimed, recovered: r.recovered, deleted: r.deleted, dropped: r.dropped, ...shardFields(),
  };
  process.stderr.write(JSON.stringify({ summary }) + '\n');
  return failed ? 1 : stopped.exitCode;
}
