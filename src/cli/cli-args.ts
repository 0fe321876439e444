/**
 * The CLI's command line: parsed and validated into StageOptions, or a
 * UsageError saying what was wrong (exit code 2).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from '../api/errors.js';
import type { StageOptions } from '../api/options.js';
import { redisArgs, redisUsage, type RedisCommand } from '../redis/redis-args.js';

export { UsageError } from '../api/errors.js';
import type { ModelSpec } from '../engine/worker-protocol.js';

export const usage = `Usage: pystage run --model NAME=FILE[:CLASS] [--model ...] [options] < input.jsonl > output.jsonl

Runs every JSON line of stdin through Python models, partitioned by key.

Options:
  --model NAME=FILE[:CLASS]   a model: its name, its file, and optionally its class (repeatable)
  --model-options NAME=JSON   constructor options of a model, a JSON object (repeatable)
  --init NAME=DATAFILE        call the model's init(DATAFILE) after loading (repeatable)
  --no-batch-model NAME       run this model one message at a time even if it has execute_batch (repeatable)
  --nan-as-null               write NaN and infinities in outputs as null (default: the message fails)
  --partitions N              partitions = worker threads = Python servers (default: CPU cores)
  --key FIELD                 the field that picks the partition (default: key); messages without it
                              are spread round-robin, warned about once and counted as "keyless"
  --route FIELD               send each message only to the model its FIELD names
  --ordered                   emit outputs in global input order (default: per-partition order)
  --python PYTHON             the Python interpreter, used as given: VENV/bin/python runs that
                              virtualenv with its packages (default: python3)
  --python-path DIR           put DIR on the servers' sys.path, for the models' imports (repeatable;
                              default: the model files' directories)
  --errors FILE|STREAM        where error lines go (default: stderr; a FILE is truncated, appended to with
                              --skip); a redis:// stream URL with --source
  --execute-timeout MS        a model call taking longer is given up and its server replaced (default: 30000)
  --load-timeout MS           loading a model (its constructor) or its init(DATAFILE) taking longer fails
                              with an error naming the model (default: 300000)
  --skip N                    skip the first N input lines: resume a cut-short run at its "resumeOffset"
                              (offsets keep counting input lines, so they continue from N)
  --progress, --no-progress   a progress line on stderr every interval (default: only when stderr is a terminal)
  --progress-interval MS      how often (default: 5000)
  --metrics-port PORT         serve Prometheus metrics on http://127.0.0.1:PORT/metrics during the run
  --handlers FILE             an ES module whose named exports answer self.context.request(name, payload)
  --host-request-timeout MS   how long a model's host request waits unless it names a timeout (default: 30000)
  --max-line-bytes N          a longer input line becomes one error line (its first 1 KiB and its length)
                              and the stream goes on (default: 64 MiB)
  --max-output-bytes N        a model output longer than this (as JSON) fails its own message, naming the
                              model and the limit (default: 64 MiB)
  --max-in-flight-bytes N     bytes per partition of messages queued or running and of outputs not yet
                              written; input waits beyond it (default: 16 MiB)
  --max-state-bytes N         bytes of self.context.state per partition; a write beyond fails (default: 16 MiB)
  --cache-max-entries N       entries in the shared cache before LRU eviction (default: 100000)
  --cache-max-bytes N         bytes in the shared cache before LRU eviction (default: 64 MiB)
  --log-level LEVEL           trace, debug, info, warn, error, fatal or silent (default: warn)
  -h, --help                  this help
  -v, --version               the version

${redisUsage}

Paths: every FILE, DATAFILE and DIR is relative to the current directory (or absolute), like any Unix
tool. The Python servers accept model and data files only from the python path and the folders of the
files named here.

Output: one line per model output on stdout:
  {"offset":N,"key":K,"partition":P,"model":NAME,"output":{...}}
Error lines ({"offset","key","partition","model","line","error":{"code","type","message","traceback"}})
go to --errors. At exit one summary line goes to stderr:
  {"summary":{"in","out","noOutput","errors","keyless","restarts","reconnects","seconds","msgPerSec","interrupted",...}}
Ctrl-C (SIGINT) or SIGTERM: no more input is read, what was read is finished, the summary says
"interrupted":true and "resumeOffset" (run again with --skip that many); a second signal exits at once.
Exit codes: 0 the stream was processed (even with per-message errors), 1 the stage could not run (or
stdout was closed early), 2 bad usage, 130 after SIGINT, 143 after SIGTERM.`;



export type Command =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'run'; options: StageOptions; errorsFile: string | null; handlersFile: string | null; run: RunFlags; redis: RedisCommand | null };

/** What the CLI itself does around the stage. */
export interface RunFlags {
  /** Input lines to skip: the `resumeOffset` of a cut-short run. */
  skip: number;
  /** Progress lines on stderr: true/false forced, null when stderr is a terminal. */
  progress: boolean | null;
  progressIntervalMs: number;
}

/** Parse argv (without node and the script). */
export function parseCommandLine(argv: string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        model: { type: 'string', multiple: true },
        'model-options': { type: 'string', multiple: true },
        init: { type: 'string', multiple: true },
        'no-batch-model': { type: 'string', multiple: true },
        'nan-as-null': { type: 'boolean' },
        partitions: { type: 'string' },
        key: { type: 'string' },
        route: { type: 'string' },
        ordered: { type: 'boolean' },
        python: { type: 'string' },
        'python-path': { type: 'string', multiple: true },
        errors: { type: 'string' },
        'execute-timeout': { type: 'string' },
        'load-timeout': { type: 'string' },
        handlers: { type: 'string' },
        'host-request-timeout': { type: 'string' },
        'max-state-bytes': { type: 'string' },
        'max-line-bytes': { type: 'string' },
        'max-output-bytes': { type: 'string' },
        'max-in-flight-bytes': { type: 'string' },
        'cache-max-entries': { type: 'string' },
        'cache-max-bytes': { type: 'string' },
        'log-level': { type: 'string' },
        skip: { type: 'string' },
        progress: { type: 'boolean' },
        'no-progress': { type: 'boolean' },
        'progress-interval': { type: 'string' },
        'metrics-port': { type: 'string' },
        source: { type: 'string' }, group: { type: 'string' }, consumer: { type: 'string' },
        sink: { type: 'string' }, 'claim-idle': { type: 'string' }, 'max-deliveries': { type: 'string' }, exclusive: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.version) return { kind: 'version' };
  if (values.help) return { kind: 'help' };
  if (positionals.length === 0) throw new UsageError('missing command: pystage run --model NAME=FILE ...');
  if (positionals[0] !== 'run' || positionals.length > 1) throw new UsageError(`unknown command "${positionals.join(' ')}"; the command is "run"`);
  if (!values.model || values.model.length === 0) throw new UsageError('pystage run needs at least one --model NAME=FILE[:CLASS]');

  // Every path typed here is relative to the current directory (or absolute), like every Unix tool.
  const models = values.model.map(parseModel).map((m) => ({ ...m, file: resolve(m.file) }));
  const byName = new Map(models.map((m) => [m.name, m]));
  for (const item of values['model-options'] ?? []) {
    const [name, text] = splitPair('--model-options', item);
    const model = modelNamed(byName, '--model-options', name);
    let options: unknown;
    try { options = JSON.parse(text); } catch (err) {
      throw new UsageError(`--model-options ${name}: not valid JSON (${(err as Error).message})`);
    }
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new UsageError(`--model-options ${name}: must be a JSON object, got ${text}`);
    }
    model.options = options as Record<string, unknown>;
  }
  for (const item of values.init ?? []) {
    const [name, dataFile] = splitPair('--init', item);
    modelNamed(byName, '--init', name).initData = resolve(dataFile);
  }
  for (const name of values['no-batch-model'] ?? []) modelNamed(byName, '--no-batch-model', name).batch = false;
  const options: StageOptions = {
    models,
    partitions: values.partitions === undefined ? undefined : integer('--partitions', values.partitions, 256),
    keyField: values.key,
    routeField: values.route,
    ordered: values.ordered ?? false,
    python: values.python,
    pythonPath: values['python-path']?.map((dir) => resolve(dir)),
    executeTimeoutMs: values['execute-timeout'] === undefined ? undefined : integer('--execute-timeout', values['execute-timeout'], 86_400_000),
    loadTimeoutMs: values['load-timeout'] === undefined ? undefined : integer('--load-timeout', values['load-timeout'], 86_400_000),
    logLevel: values['log-level'] ?? 'warn',
    nanAsNull: values['nan-as-null'] ?? false,
    hostRequestTimeoutMs: optionalInteger('--host-request-timeout', values['host-request-timeout'], 86_400_000),
    maxStateBytes: optionalInteger('--max-state-bytes', values['max-state-bytes'], 2 ** 32),
    maxMessageBytes: optionalInteger('--max-line-bytes', values['max-line-bytes'], 2 ** 32),
    maxOutputBytes: optionalInteger('--max-output-bytes', values['max-output-bytes'], 2 ** 32),
    maxInFlightBytes: optionalInteger('--max-in-flight-bytes', values['max-in-flight-bytes'], 2 ** 40),
    cacheMaxEntries: optionalInteger('--cache-max-entries', values['cache-max-entries'], 2 ** 32),
    cacheMaxBytes: optionalInteger('--cache-max-bytes', values['cache-max-bytes'], 2 ** 40),
    metricsPort: values['metrics-port'] === undefined ? undefined : integer('--metrics-port', values['metrics-port'], 65535, 0),
  };
  if (values.progress && values['no-progress']) throw new UsageError('--progress and --no-progress contradict each other');
  const run: RunFlags = {
    skip: values.skip === undefined ? 0 : integer('--skip', values.skip, Number.MAX_SAFE_INTEGER, 0),
    progress: values.progress ? true : values['no-progress'] ? false : null,
    progressIntervalMs: values['progress-interval'] === undefined ? 5000 : integer('--progress-interval', values['progress-interval'], 3_600_000, 100),
  };
  const redis = redisArgs(values, (flag, text) => integer(flag, text, 86_400_000));
  return { kind: 'run', options, errorsFile: redis === null ? values.errors ?? null : null, handlersFile: values.handlers ?? null, run, redis };
}

function optionalInteger(flag: string, text: string | undefined, max: number): number | undefined {
  return text === undefined ? undefined : integer(flag, text, max);
}

function parseModel(text: string): ModelSpec {
  const [name, target] = splitPair('--model', text);
  // FILE[:CLASS]: a class name is a Python identifier, so a colon before one splits them.
  const match = /^(.+):([A-Za-z_][A-Za-z0-9_]*)$/.exec(target);
  return match ? { name, file: match[1]!, className: match[2]! } : { name, file: target };
}

function splitPair(flag: string, text: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0 || eq === text.length - 1) throw new UsageError(`${flag} expects NAME=VALUE, got "${text}"`);
  return [text.slice(0, eq), text.slice(eq + 1)];
}

function modelNamed(models: Map<string, ModelSpec>, flag: string, name: string): ModelSpec {
  const model = models.get(name);
  if (!model) throw new UsageError(`${flag} names model "${name}", but no --model ${name}=FILE was given`);
  return model;
}

function integer(flag: string, text: string, max: number, min = 1): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got "${text}"`);
  return n;
}
