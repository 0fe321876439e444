/**
 * The Piscina worker of one partition. Its pool has exactly one thread, so
 * this module's state is the partition's state: one PartitionRuntime, started
 * by the first `start` task and stopped by `stop`.
 */
import { workerData } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { PartitionFailedError, toErrorRecord } from '../src/api/errors.js';
import { createLogger } from '../src/telemetry/logger.js';
import type { WorkerConfig, WorkerReply, WorkerTask } from '../src/engine/worker-protocol.js';
import { PartitionRuntime } from './runtime/partition-runtime.js';
import { dump, taskReceived, taskReturned, TRACING } from '../src/telemetry/hop-trace.js';

const config = workerData as WorkerConfig;
const logger = createLogger(config.logLevel, { stage: config.stageId, partition: config.partition });
let runtime: PartitionRuntime | null = null;
let starting: Promise<PartitionRuntime> | null = null;
/**
 * Settles when the last exec task before the newest one has finished. Batches are answered in the
 * order they came: a batch finished before an earlier one (still reading a spool file) would
 * otherwise be in the main thread's hands, with state changes its mirror does not have yet, and if
 * this thread then died the replacement would resend the later batches without them.
 */
let previousExec: Promise<unknown> = Promise.resolve();

// A child process outlives its worker thread unless killed: kill it by pid when the thread goes.
process.on('exit', () => runtime?.killSync());

/**
 * Handle one task from the main thread; failures are returned as records, never thrown, but for one:
 * a batch that reaches a thread nobody started (Piscina's replacement of a thread that died, before
 * the lane's start task) is rejected, so that the lane resends it once the thread is started.
 */
export default async function handleTask(task: WorkerTask): Promise<WorkerReply<unknown>> {
  if (task.op === 'exec' && runtime === null && starting === null) {
    throw new PartitionFailedError(`partition ${config.partition}: this worker thread was not started yet`, { partition: config.partition });
  }
  try {
    if (task.op === 'exec') {
      if (TRACING) taskReceived(task.trace!);
      const r = runtime ?? await starting;
      if (!r) throw new PartitionFailedError(`partition ${config.partition} was not started`, { partition: config.partition });
      const running = r.exec(task);
      const before = previousExec;
      previousExec = running.catch(() => {});
      await before;
      const value = await running;
      const reply: WorkerReply<unknown> = { ok: true, value, restarts: r.restarts, serverPid: r.serverPid, recovery: r.recoveries };
      if (TRACING) taskReturned(task.trace!, r.serverPid);
      // The outputs' bytes and their table (one buffer: OutcomeTable.finish) move to the main thread instead of being copied.
      return move({ [transferableSymbol]: [value.data.buffer], [valueSymbol]: reply }) as unknown as WorkerReply<unknown>;
    }
    const value = await run(task);
    return { ok: true, value, restarts: runtime?.restarts ?? 0, serverPid: runtime?.serverPid ?? null, recovery: runtime?.recoveries };
  } catch (err) {
    return { ok: false, error: toErrorRecord(err), restarts: runtime?.restarts ?? 0, serverPid: runtime?.serverPid ?? null, recovery: runtime?.recoveries };
  }
}

async function run(task: WorkerTask): Promise<unknown> {
  if (task.op === 'start') {
    starting ??= PartitionRuntime.start({ ...config, python: task.python }, task.models, logger, task.host).then((r) => {
      runtime = r;
      logger.info({ uniq: r.uniq, serverPid: r.serverPid }, 'partition ready');
      return r;
    }, (err) => {
      starting = null;
      throw err;
    });
    await starting;
    return { uniq: runtime!.uniq, serverPid: runtime!.serverPid };
  }
  const r = runtime ?? await starting;
  if (!r) throw new PartitionFailedError(`partition ${config.partition} was not started`, { partition: config.partition });
  switch (task.op) {
    case 'addModel':
    case 'updateModel': return r.addModel(task.spec, task.op);
    case 'removeModel': return r.removeModel(task.name);
    case 'initModel': return r.initModel(task.name, task.dataFile);
    case 'loadState': return r.loadState(task.state);
    case 'status': return { partition: config.partition, uniq: r.uniq, serverPid: r.serverPid, restarts: r.restarts, server: await r.status() };
    case 'stop': {
      await r.stop();
      if (TRACING) dump('worker');
      runtime = null;
      starting = null;
      return null;
    }
  }
}
