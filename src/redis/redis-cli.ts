/**
 * `pystage run --source redis://… --group G`: the CLI over a consumer group. The stage reads
 * until SIGTERM or SIGINT, then stops reading, finishes and acknowledges every entry it read,
 * and exits 0 (SIGTERM) or 130 (SIGINT); a second signal leaves at once (what was not yet
 * acknowledged stays pending and is taken over by the next start or another member's claim).
 */
import type { RunFlags } from '../cli/cli-args.js';
import type { StageOptions } from '../api/options.js';
import { ProgressLine } from '../cli/progress-line.js';
import { startStage } from '../cli/start-stage.js';
import type { RedisCommand } from './redis-args.js';
import { redisSource } from './redis-source.js';
import { RedisSink } from './redis-sink.js';
import { connect } from './redis-connection.js';
import { isStreamUrl, parseStreamUrl } from './redis-url.js';
import { LineTarget, type RecordTarget } from './record-target.js';
import { runRedisStage } from './redis-run.js';
import { onStopSignals } from './stop-signals.js';

/** Run the stage over the consumer group; resolves to the exit code. */
export async function runRedisCli(options: StageOptions, command: RedisCommand, flags: RunFlags): Promise<number> {
  if (command.shards !== null) return (await import('./shard-cli.js')).runShardCli(options, command, flags);
  const stage = await startStage(options);
  if (typeof stage === 'number') return stage;
  const source = redisSource(command.source, {
    group: command.group, consumer: command.consumer, claimIdleMs: command.claimIdleMs, maxDeliveries: command.maxDeliveries, exclusive: command.exclusive, logger: stage.logger,
  });
  const owned: RedisSink[] = [];
  let errorsFile: LineTarget | null = null;
  const target = (url: string): RedisSink => {
    const parsed = parseStreamUrl(url);
    // On the source's server a sink shares the source's connection: its XADDs and the XACK go in one script (store-script.ts).
    if (parsed.server === source.url.server) return new RedisSink(parsed, source.commands, source.logger, false);
    const redis = connect(parsed, { name: `pystage-sink-${source.options.consumer}`, logger: source.logger, reconnectMinMs: source.options.reconnectMinMs, reconnectMaxMs: source.options.reconnectMaxMs });
    const sink = new RedisSink(parsed, redis, source.logger, true);
    owned.push(sink);
    return sink;
  };

  const stopped = onStopSignals(stage.logger, 'stopping: no more entries are read; entries in hand are finished and acknowledged', () => source.stop());
  let failed = false;
  const progress = ProgressLine.onStderr(stage, flags.progress, flags.progressIntervalMs);
  progress?.start();
  try {
    const outputs: RecordTarget = command.sink === null ? new LineTarget(process.stdout, false) : target(command.sink);
    let errors: RecordTarget;
    if (command.errors === null) errors = new LineTarget(process.stderr, false);
    else if (isStreamUrl(command.errors)) errors = target(command.errors);
    else errors = errorsFile = await LineTarget.appendingTo(command.errors);
    await runRedisStage(stage, source, { outputs, errors });
  } catch (err) {
    process.stderr.write(`pystage: ${(err as Error).message}\n`);
    failed = true;
  } finally {
    progress?.stop();
    source.stop();
    await stage.close();
    await source.close();
    await Promise.all(owned.map((sink) => sink.close()));
    await errorsFile?.close();
  }
  const s = stage.stats();
  const summary = {
    ...s, seconds: Math.round(s.seconds * 1000) / 1000, msgPerSec: Math.round(s.msgPerSec),
    acked: source.stats.acked, claimed: source.stats.claimed, recovered: source.stats.recovered, deleted: source.stats.deleted,
    unacked: source.unacked,
  };
  process.stderr.write(JSON.stringify({ summary }) + '\n');
  return failed ? 1 : stopped.exitCode;
}
