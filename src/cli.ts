#!/usr/bin/env node
/**
 * `pystage run`: JSON lines on stdin, one output line per model output on
 * stdout, one error line per failure in --errors, a summary on stderr.
 */
import { readFileSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { ResumeRefusedError, UsageError } from './api/errors.js';
import { attachDurable, planDurableRun, type DurablePlan } from './cli/durable-run.js';
import { parseCommandLine, usage } from './cli/cli-args.js';
import { readLines, skipLines } from './cli/line-reader.js';
import { LineWriter } from './cli/line-writer.js';
import { visitOutcomes, type OutcomeVisitor } from './engine/batch.js';
import { RecordWriter } from './records/record-text.js';
import { ProgressLine } from './cli/progress-line.js';
import { ResumePoint } from './cli/resume-point.js';
import { startStage } from './cli/start-stage.js';
import { stageEngine } from './engine/stage-internals.js';
import { syncFileStream } from './cli/sync-file-stream.js';
import { loadHandlers } from './cli/handlers-file.js';

async function main(argv: string[]): Promise<number> {
  let command;
  try {
    command = parseCommandLine(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`pystage: ${err.message}\nRun "pystage run --help" for usage.\n`);
    return 2;
  }
  if (command.kind === 'help') {
    process.stdout.write(usage + '\n');
    return 0;
  }
  if (command.kind === 'version') {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(pkg.version + '\n');
    return 0;
  }

  if (command.kind === 'state' || command.kind === 'redis-state') {
    try {
      if (command.kind === 'state') await (await import('./cli/state-command.js')).printState(command.dir, command.model, command.partition, process.stdout);
      else await (await import('./redis/shard-state-command.js')).printShardState(command.source, command.group, command.shards, command.model, process.stdout);
      return 0;
    } catch (err) {
      process.stderr.write(`pystage: ${(err as Error).message}\n`);
      return 1;
    }
  }

  // Redis Streams: a consumer group instead of stdin/stdout (src/redis/redis-cli.ts; ioredis loads only here).
  if (command.redis !== null) return (await import('./redis/redis-cli.js')).runRedisCli(command.options, command.redis, command.run);

  const flags = command.run;
  let plan: DurablePlan | null = null;
  if (command.options.stateDir !== undefined) {
    try {
      plan = await planDurableRun({
        dir: command.options.stateDir, partitions: command.options.partitions ?? availableParallelism(),
        models: command.options.models.map((m) => m.name), inputFile: flags.inputFile, outputFile: flags.outputFile,
        errorsFile: command.errorsFile, reset: flags.resetState, newInput: flags.newInput,
      });
    } catch (err) {
      process.stderr.write(`pystage: ${(err as Error).message}\n`);
      return err instanceof ResumeRefusedError ? 2 : 1;
    }
    if (plan.warning !== null) process.stderr.write(plan.warning + '\n');
  }
  const skip = plan?.resume?.lowWater ?? flags.skip;
  let errorsStream: Writable = process.stderr;
  let outStream: Writable = process.stdout;
  try {
    // A resumed run (--skip, or a state dir's resume point) continues the first run's files instead of wiping them.
    if (command.errorsFile) errorsStream = syncFileStream(command.errorsFile, flags.skip > 0 || plan?.errorBytes != null);
  } catch (err) {
    process.stderr.write(`pystage: cannot open the --errors file: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    if (flags.outputFile !== null) outStream = syncFileStream(flags.outputFile, plan?.outputBytes != null);
  } catch (err) {
    process.stderr.write(`pystage: cannot open the --output file: ${(err as Error).message}\n`);
    return 1;
  }

  if (command.handlersFile !== null) {
    try {
      command.options.handlers = await loadHandlers(command.handlersFile);
    } catch (err) {
      process.stderr.write(`pystage: ${(err as Error).message}\n`);
      return 2;
    }
  }
  const showProgress = flags.progress ?? process.stderr.isTTY === true;
  if (plan !== null && showProgress) command.options.onRestoreProgress = (p) => process.stderr.write(JSON.stringify({ restore: p }) + '\n');

  const stage = await startStage(command.options);
  if (typeof stage === 'number') return stage;

  const out = new LineWriter(outStream, outStream !== process.stdout);
  const errors = new LineWriter(errorsStream, errorsStream !== process.stderr);
  const durable = plan === null ? null : attachDurable(stageEngine(stage), plan, { out, outStream, errors, errorsStream });
  // What was handed to the writers: the summary reports these, and where a cut-short run resumes.
  const written = { out: 0, noOutput: 0, errors: 0 };
  const resume = new ResumePoint(skip);
  const writer = lineFormatter(out, errors, written);
  /** The summary line; `interrupted` runs say the offset to resume from (pystage run --skip N). */
  const summary = (cutShort: boolean) => {
    const stats = stage.stats();
    const line: Record<string, unknown> = {
      in: stats.in, ...written, keyless: stats.keyless, restarts: stats.restarts,
      reconnects: Object.values(stats.reconnectCauses).reduce((sum, n) => sum + n, 0),
      seconds: Math.round(stats.seconds * 1000) / 1000, msgPerSec: Math.round(stats.msgPerSec), interrupted: cutShort,
    };
    if (skip > 0) line.skipped = skip;
    // With a state dir the same command resumes (lines are left out per partition, so no one offset says it).
    if (cutShort && durable === null) line.resumeOffset = resume.offset;
    if (durable !== null) line.checkpoints = durable.checkpoints();
    process.stderr.write(JSON.stringify({ summary: line }) + '\n');
  };

  let stopReading = false;
  const input: Readable = flags.inputFile === null ? process.stdin : createReadStream(flags.inputFile);
  let signal: NodeJS.Signals | null = null;
  const stopInput = () => {
    stopReading = true;
    input.destroy();
    // Stops the run even while it waits for room in a lane; what was taken is still finished. A failure
    // of the close surfaces where main awaits the same promise.
    stage.close().catch(() => {});
  };
  const onSignal = (received: NodeJS.Signals) => {
    const code = received === 'SIGINT' ? 130 : 143;
    if (signal !== null) {
      // Second signal: leave now, saying what was written. The exit hook kills every Python server.
      out.flush();
      errors.flush();
      summary(true);
      process.exit(code);
    }
    signal = received;
    stage.logger.warn({ signal: received }, 'stopping: no more input is read; messages already read are finished (a second signal exits at once)');
    stopInput();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let readerGone = false;
  outStream.on('error', (err: NodeJS.ErrnoException) => {
    // The reader closed stdout (e.g. `| head`): stop reading, finish what is in flight, exit 1.
    if (!readerGone) stage.logger.warn({ code: err.code }, 'stdout was closed by its reader; stopping');
    readerGone = true;
    stopInput();
  });
  errorsStream.on('error', (err: NodeJS.ErrnoException) => {
    // Error lines that cannot be written must not pass silently: stop like a closed stdout.
    if (!readerGone) process.stderr.write(`pystage: writing the --errors file failed: ${err.message}; stopping\n`);
    readerGone = true;
    stopInput();
  });
  const progress = ProgressLine.onStderr(stage, flags.progress, flags.progressIntervalMs);
  progress?.start();
  const lines = skipLines(readLines(input as AsyncIterable<Buffer>, () => stopReading, stageEngine(stage).maxLineBytes), skip);
  let failed = true;
  try {
    for await (const ranges of stageEngine(stage).processLines(stopOnDestroy(lines), skip)) {
      for (const { batch, from, to } of ranges) {
        visitOutcomes(batch, from, to, writer);
        for (let i = from; i < to; i++) resume.mark(batch.offsets[i]!);
        durable?.consumed(batch);
      }
      await out.ready();
      await errors.ready();
    }
    failed = false;
  } finally {
    progress?.stop();
    await stage.close();
    await out.end();
    await errors.end();
    // The last checkpoint, after every line is in its file; a run that read its whole input marks it finished.
    if (durable !== null) {
      try {
        await durable.final(!failed && !stopReading && signal === null && !readerGone);
      } catch (err) {
        process.stderr.write(`pystage: the last checkpoint failed: ${(err as Error).message}\n`);
        readerGone = true;
      }
    }
  }
  // Cut short by a signal or a reader that went away (for the latter, resumeOffset counts what was handed to
  // stdout; what the reader did not take before it left is not known).
  summary(signal !== null || readerGone);
  if (readerGone) return 1;
  return signal === null ? 0 : signal === 'SIGINT' ? 130 : 143;
}

/**
 * Writes each outcome as a line: outputs to `out` as
 * `{"offset":N,"key":K,"partition":P,"model":M,"output":…}` with the key and the output copied as
 * the bytes they arrived as, failures to `errors` with the original line.
 */
function lineFormatter(out: LineWriter, errors: LineWriter, written: { out: number; noOutput: number; errors: number }): OutcomeVisitor {
  const records = new RecordWriter();
  return {
    output(batch, i, model, data, start, end) {
      records.output(out, batch, i, model, data, start, end);
      out.endLine();
      written.out++;
    },
    noOutput() {
      written.noOutput++;
    },
    error(batch, i, model, error) {
      records.error(errors, batch, i, model, error);
      errors.endLine();
      written.errors++;
    },
  };
}

/** stdin destroyed by a signal ends the line stream instead of failing it. */
async function* stopOnDestroy<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* source;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') throw err;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
}, (err) => {
  process.stderr.write(`pystage: ${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
});
