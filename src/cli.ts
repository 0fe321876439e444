#!/usr/bin/env node
/**
 * `pystage run`: JSON lines on stdin, one output line per model output on
 * stdout, one error line per failure in --errors, a summary on stderr.
 */
import { readFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { parseCommandLine, usage, UsageError } from './cli/cli-args.js';
import { readLines, skipLines } from './cli/line-reader.js';
import { LineWriter } from './cli/line-writer.js';
import { SPAN_WIDTH, visitOutcomes, type Batch, type OutcomeVisitor } from './engine/batch.js';
import { CLOSE, KEY_FIELD, NULL, OFFSET_FIELD, OutputTails, errorTail } from './records/record-text.js';
import { ProgressLine } from './cli/progress-line.js';
import { ResumePoint } from './cli/resume-point.js';
import { createStage, type Stage } from './api/stage.js';
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

  // Redis Streams: a consumer group instead of stdin/stdout (src/redis/redis-cli.ts; ioredis loads only here).
  if (command.redis !== null) return (await import('./redis/redis-cli.js')).runRedisCli(command.options, command.redis, command.run);

  const flags = command.run;
  let errorsStream: Writable = process.stderr;
  if (command.errorsFile) {
    try {
      // A resumed run (--skip) continues the first run's error file instead of wiping it.
      errorsStream = syncFileStream(command.errorsFile, flags.skip > 0);
    } catch (err) {
      process.stderr.write(`pystage: cannot open the --errors file: ${(err as Error).message}\n`);
      return 1;
    }
  }

  if (command.handlersFile !== null) {
    try {
      command.options.handlers = await loadHandlers(command.handlersFile);
    } catch (err) {
      process.stderr.write(`pystage: ${(err as Error).message}\n`);
      return 2;
    }
  }

  let stage: Stage;
  try {
    stage = await createStage(command.options);
  } catch (err) {
    process.stderr.write(`pystage: the stage could not start: ${(err as Error).message}\n`);
    return 1;
  }

  const out = new LineWriter(process.stdout);
  const errors = new LineWriter(errorsStream, errorsStream !== process.stderr);
  // What was handed to the writers: the summary reports these, and where a cut-short run resumes.
  const written = { out: 0, noOutput: 0, errors: 0 };
  const resume = new ResumePoint(flags.skip);
  const writer = lineFormatter(out, errors, written);
  /** The summary line; `interrupted` runs say the offset to resume from (pystage run --skip N). */
  const summary = (cutShort: boolean) => {
    const stats = stage.stats();
    const line: Record<string, unknown> = {
      in: stats.in, ...written, keyless: stats.keyless, restarts: stats.restarts,
      reconnects: Object.values(stats.reconnectCauses).reduce((sum, n) => sum + n, 0),
      seconds: Math.round(stats.seconds * 1000) / 1000, msgPerSec: Math.round(stats.msgPerSec), interrupted: cutShort,
    };
    if (flags.skip > 0) line.skipped = flags.skip;
    if (cutShort) line.resumeOffset = resume.offset;
    process.stderr.write(JSON.stringify({ summary: line }) + '\n');
  };

  let stopReading = false;
  let signal: NodeJS.Signals | null = null;
  const stopInput = () => {
    stopReading = true;
    process.stdin.destroy();
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
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
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
  const progress = (flags.progress ?? process.stderr.isTTY === true)
    ? new ProgressLine(stage, flags.progressIntervalMs, (line) => process.stderr.write(line))
    : null;
  progress?.start();
  const lines = skipLines(readLines(process.stdin as AsyncIterable<Buffer>, () => stopReading, stageEngine(stage).maxLineBytes), flags.skip);
  try {
    for await (const ranges of stageEngine(stage).processLines(stopOnDestroy(lines), flags.skip)) {
      for (const { batch, from, to } of ranges) {
        visitOutcomes(batch, from, to, writer);
        for (let i = from; i < to; i++) resume.mark(batch.offsets[i]!);
      }
      await out.ready();
      await errors.ready();
    }
  } finally {
    progress?.stop();
    await stage.close();
    await out.end();
    await errors.end();
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
  const tails = new OutputTails();
  const head = (w: LineWriter, batch: Batch, i: number) => {
    w.bytes(OFFSET_FIELD).decimal(batch.offsets[i]!).bytes(KEY_FIELD);
    const s = batch.spans[i * SPAN_WIDTH + 2]!;
    if (s < 0) w.bytes(NULL);
    else w.bytes(batch.buf, s, batch.spans[i * SPAN_WIDTH + 3]!);
  };
  return {
    output(batch, i, model, data, start, end) {
      head(out, batch, i);
      out.bytes(tails.of(batch.partition, model)).bytes(data, start, end).bytes(CLOSE).endLine();
      written.out++;
    },
    noOutput() {
      written.noOutput++;
    },
    error(batch, i, model, error) {
      head(errors, batch, i);
      errors.text(errorTail(batch, i, model, error)).endLine();
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
