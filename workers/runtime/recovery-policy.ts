/**
 * What a broken connection costs: which operation is blamed (a batch is split, a single message given
 * up after `maxAttempts` crashes or one deadline), which failures a retry can fix, and the backoff.
 */
import type { Options as RetryOptions } from 'p-retry';
import { ConnectionBrokenError, ModelLoadError, PoisonMessageError, PystageError, PythonStartError } from '../../src/api/errors.js';
import type { CommandName } from '../../src/protocol/index.js';
import type { PipelineQueue } from '../../src/engine/pipeline-queue.js';
import type { WorkerConfig } from '../../src/engine/worker-protocol.js';
import type { Operation } from './exec-plan.js';

/** The connection broke with `inFlight` operations on the wire (now unsent): blame the one that broke it. */
export function blameAfterBreak(queue: PipelineQueue<Operation>, err: ConnectionBrokenError, inFlight: number, config: WorkerConfig): void {
  if (inFlight === 0 || err.reason === 'rewind') return;
  // A timeout names the head: replies leave as each request finishes, so the one without a reply is
  // the one running. After a crash the server may have finished replies it never sent, so with several
  // requests in flight any of them may be the one that broke it: all become suspects, resent one at a time.
  if (inFlight === 1 || err.reason === 'timeout') blameHead(queue, err, config);
  else for (let i = 0; i < inFlight; i++) queue.at(i)!.suspect = true;
}

/** The head was running when the server broke: split it, or count it toward poison. */
function blameHead(queue: PipelineQueue<Operation>, err: ConnectionBrokenError, config: WorkerConfig): void {
  const head = queue.first()!;
  if (head.split) {
    queue.dropFirst();
    // Every piece was on the wire inside the batch: sending it again re-executes it.
    const pieces = head.split(err.progress);
    for (const piece of pieces) piece.sentBefore = true;
    queue.unshift(...pieces);
    return;
  }
  head.crashes++;
  head.suspect = true;
  const hung = err.reason === 'timeout';
  if (hung || head.crashes >= config.maxAttempts) {
    queue.dropFirst();
    head.giveUp(head.failure?.(hung, head.crashes) ?? new PoisonMessageError(
      hung
        ? `the model did not finish the message within ${config.executeTimeoutMs} ms; its Python server was replaced`
        : `the message broke its Python server ${head.crashes} times; given up after ${config.maxAttempts} tries`,
      { partition: config.partition, type: hung ? 'Timeout' : 'ServerCrash' },
    ));
  }
}

/** The error of a model whose loading (or init) hung past the load timeout or kept killing its server. */
export function loadFailure(config: WorkerConfig, cmd: CommandName, model: string, hung: boolean, crashes: number): ModelLoadError {
  const what = cmd === 'initModel' ? `running init() of model "${model}"` : `loading model "${model}"`;
  return new ModelLoadError(hung
    ? `${what} did not finish within ${config.loadTimeoutMs} ms (the load timeout: --load-timeout, loadTimeoutMs); its Python server was replaced`
    : `${what} broke its Python server ${crashes} times; given up`,
  { partition: config.partition, model, type: hung ? 'LoadTimeout' : 'ServerCrash' });
}

/** The backoff of a restart; `stillRecovering` ends it when the partition stops meanwhile. */
export function restartRetryOptions(stillRecovering: () => boolean): RetryOptions {
  return {
    retries: 5, factor: 2, minTimeout: 50, maxTimeout: 2000,
    // Outside kills do not use up retries, but they cannot keep a partition recovering forever either.
    maxRetryTime: 60_000,
    // A new server killed from outside (or its connection cut) says nothing about whether the next start
    // will work: only failures of our own (a crash on start, a replay refused, no ready line) use up retries.
    shouldConsumeRetry: ({ error }) => !isExternalFailure(error),
    shouldRetry: () => stillRecovering(),
  };
}

/**
 * A start failure no retry can fix: the interpreter is missing or the server exits on start (a bad
 * interpreter, a bad --python-path), or a model refuses to load or hangs while loading.
 */
export function isDeterministic(error: unknown): boolean {
  const e = error as { type?: string };
  if (error instanceof PythonStartError) return e.type === 'NotFound' || e.type === 'Exited';
  return error instanceof PystageError && !(error instanceof ConnectionBrokenError);
}

/** A failure caused by the server being killed or its connection cut, not by anything we did. */
function isExternalFailure(error: unknown): boolean {
  const e = error as { code?: string; type?: string };
  // A deadline is the server hanging, which is no outside kill.
  if (error instanceof ConnectionBrokenError) return error.reason !== 'timeout';
  return e.type === 'Killed'
    || e.code === 'ECONNREFUSED' || e.code === 'ECONNRESET' || e.code === 'EPIPE';
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
