/**
 * The CLI's command line: parsed and validated into StageOptions, or a
 * UsageError saying what was wrong (exit code 2).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from '../api/errors.js';
import { didYouMean } from '../api/nearest-name.js';
import type { StageOptions } from '../api/options.js';
import { redisArgs, redisUsage, type RedisCommand } from '../redis/redis-args.js';
import { isStreamUrl, parseStreamUrl } from '../redis/redis-url.js';

import type { ModelSpec } from '../engine/worker-protocol.js';

export const usage = `Usage: pystage run --model NAME=FILE[:CLASS] [--model ...] [options] < input.jsonl > output.jsonl
       pystage state redis://HOST:PORT[/DB]/STREAM --group G --shards N [--model NAME]
         (the state shard members stored: {"shard","model","key","value"} lines)

Runs every JSON line of stdin through Python models, partitioned by key.

Options:
  --model NAME=FILE[:CLASS]   a model: its name, its file, and optionally its class (repeatable)
  --model-options NAME=JSON   constructor options of a model, a JSON object (repeatable)
  --init NAME=DATAFILE        call the model's init(DATAFILE) after loading (repeatable)
  --no-batch-model NAME       run this model one message at a time even if it has execute_batch (repeatable)
  --state-ttl NAME=SECONDS    the model's state keys expire SECONDS after the write, unless it names its own
                              ttl (self.context.state.set(key, value, ttl=S)); default: never (repeatable)
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
  --input FILE                read input lines from FILE instead of stdin
  --output FILE               write output lines to FILE instead of stdout (truncated, or cut back to the
                              checkpoint when a --state-dir run resumes)
  --state-dir DIR             keep the partitions' state in DIR (an embedded LMDB store): checkpointed, restored
                              by the next run; with an input file and --output/--errors files, running the same
                              command again after a crash resumes it, each input's lines written exactly once
  --checkpoint-interval MS    checkpoint at least this often (default: 1000), and at every exit that finishes
  --reset-state               with --state-dir: start over with an empty state
  --new-input                 with --state-dir: keep the state and take the input as new, even after a cut-short run
  --repartition-state         with --state-dir: state of another partition count moves to the partition its key
                              hashes to (right when models key their state by the message key) instead of refusing
  --progress, --no-progress   progress on stderr every interval: a line rewritten in place on a terminal,
                              JSON lines into a file or pipe (default: only when stderr is a terminal)
  --progress-interval MS      how often (default: 5000)
  --metrics-port PORT         serve Prometheus metrics on http://HOST:PORT/metrics during the run (0: a
                              free port, its URL printed on stderr)
  --metrics-host HOST         the address metrics are served on (default: 127.0.0.1, this machine only:
                              they are unauthenticated; 0.0.0.0 lets other machines scrape them)
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
Error lines ({"offset","key","partition","model","input","error":{"code","type","message","traceback"}})
go to --errors. At exit one summary line goes to stderr:
  {"summary":{"in","out","noOutput","errors","keyless","restarts","reconnects","seconds","msgPerSec","interrupted",...}}
pystage state DIR [--model NAME] [--partition P] prints a state dir's entries as JSON lines
  {"partition","model","key","value"} (value: the stored JSON text, byte for byte).
Ctrl-C (SIGINT) or SIGTERM: no more input is read, what was read is finished, the summary says
"interrupted":true and "resumeOffset" (run again with --skip that many); a second signal exits at once.
Exit codes: 0 the stream was processed (even with per-message errors); 2 bad usage, an option that cannot
work, or a model that cannot load (one message, with its traceback); 1 this machine could not run the
stage (or stdout was closed early); 130 after SIGINT, 143 after SIGTERM.`;



export type Command =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'state'; dir: string; model: string | null; partition: number | null }
  | { kind: 'redis-state'; source: string; group: string; shards: number; model: string | null }
  | { kind: 'run'; options: StageOptions; errorsFile: string | null; handlersFile: string | null; run: RunFlags; redis: RedisCommand | null };

/** What the CLI itself does around the stage. */
export interface RunFlags {
  /** Input lines to skip: the `resumeOffset` of a cut-short run. */
  skip: number;
  /** Progress lines on stderr: true/false forced, null when stderr is a terminal. */
  progress: boolean | null;
  progressIntervalMs: number;
  /** --input FILE (null: stdin) and --output FILE (null: stdout). */
  inputFile: string | null;
  outputFile: string | null;
  /** With --state-dir: start empty / take the input as new. */
  resetState: boolean;
  newInput: boolean;
}

/** Every option of `pystage run`, for parseArgs and for "did you mean". */
const flags = {
  model: { type: 'string', multiple: true },
  'model-options': { type: 'string', multiple: true },
  init: { type: 'string', multiple: true },
  'no-batch-model': { type: 'string', multiple: true },
  'state-ttl': { type: 'string', multiple: true },
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
  'metrics-host': { type: 'string' },
  input: { type: 'string' }, output: { type: 'string' }, 'state-dir': { type: 'string' }, 'checkpoint-interval': { type: 'string' },
  'reset-state': { type: 'boolean' }, 'new-input': { type: 'boolean' }, 'repartition-state': { type: 'boolean' }, partition: { type: 'string' },
  source: { type: 'string' }, group: { type: 'string' }, consumer: { type: 'string' },
  sink: { type: 'string' }, 'claim-idle': { type: 'string' }, 'max-deliveries': { type: 'string' }, exclusive: { type: 'boolean' },
  shards: { type: 'string' }, 'lease-ms': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

/** Parse argv (without node and the script). */
export function parseCommandLine(argv: string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: flags,
    });
  } catch (err) {
    const unknown = /^Unknown option '([^']+)'/.exec((err as Error).message);
    // parseArgs' own advice (about positionals after `--`) misleads for what is nearly always a typo.
    if ((err as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown) {
      const name = unknown[1]!;
      const hint = name.startsWith('--') ? didYouMean(name.slice(2), Object.keys(flags), (flag) => `--${flag}`) : '';
      throw new UsageError(`unknown option ${name}${hint}`);
    }
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.version) return { kind: 'version' };
  if (values.help) return { kind: 'help' };
  if (positionals.length === 0) throw new UsageError('missing command: pystage run --model NAME=FILE ...');
  if (positionals[0] === 'state' && positionals.length === 2 && isStreamUrl(positionals[1]!)) return stateCommand(positionals, values);
  if (positionals[0] === 'state') {
    if (positionals.length !== 2) throw new UsageError('pystage state needs one DIR: pystage state DIR [--model NAME] [--partition P]');
    return {
      kind: 'state', dir: resolve(positionals[1]!), model: values.model?.[0] ?? null,
      partition: values.partition === undefined ? null : integer('--partition', values.partition, 255, 0),
    };
  }
  if (positionals[0] !== 'run' || positionals.length > 1) throw new UsageError(`unknown command "${positionals.join(' ')}"; the commands are "run" and "state"`);
  if (values.partition !== undefined) throw new UsageError('--partition belongs to pystage state');
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
  for (const item of values['state-ttl'] ?? []) {
    const [name, seconds] = splitPair('--state-ttl', item);
    const ttl = Number(seconds);
    if (seconds.trim() === '' || !Number.isFinite(ttl) || ttl <= 0 || Math.round(ttl * 1000) < 1) {
      throw new UsageError(`--state-ttl ${name}: SECONDS must be a positive number, got ${JSON.stringify(seconds)}`);
    }
    modelNamed(byName, '--state-ttl', name).stateTtlMs = Math.round(ttl * 1000);
  }
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
    stateDir: values['state-dir'] === undefined ? undefined : resolve(values['state-dir']),
    checkpointIntervalMs: optionalInteger('--checkpoint-interval', values['checkpoint-interval'], 86_400_000),
    repartitionState: values['repartition-state'] ?? false,
    metricsHost: values['metrics-host'],
  };
  checkDurableFlags(values);
  if (values.progress && values['no-progress']) throw new UsageError('--progress and --no-progress contradict each other');
  const run: RunFlags = {
    skip: values.skip === undefined ? 0 : integer('--skip', values.skip, Number.MAX_SAFE_INTEGER, 0),
    progress: values.progress ? true : values['no-progress'] ? false : null,
    progressIntervalMs: values['progress-interval'] === undefined ? 5000 : integer('--progress-interval', values['progress-interval'], 3_600_000, 100),
    inputFile: values.input === undefined ? null : resolve(values.input),
    outputFile: values.output === undefined ? null : resolve(values.output),
    resetState: values['reset-state'] ?? false,
    newInput: values['new-input'] ?? false,
  };
  const redis = redisArgs(values, (flag, text) => integer(flag, text, 86_400_000));
  // Shard mode: partition i is shard i.
  if (redis?.shards != null) options.partitions = redis.shards;
  return { kind: 'run', options, errorsFile: redis === null ? values.errors ?? null : null, handlersFile: values.handlers ?? null, run, redis };
}

/** Flags that only mean something together, or cannot go together. */
function checkDurableFlags(values: Record<string, unknown>): void {
  if (values.source !== undefined && (values.input !== undefined || values.output !== undefined)) {
    throw new UsageError('--input and --output are for stdin/stdout runs; with --source the sink is --sink');
  }
  const durable = values['state-dir'] !== undefined;
  for (const flag of ['checkpoint-interval', 'reset-state', 'new-input', 'repartition-state']) {
    if (values[flag] !== undefined && !durable) throw new UsageError(`--${flag} needs --state-dir DIR`);
  }
  if (!durable) return;
  if (values.source !== undefined) throw new UsageError('--state-dir works with stdin/--input, not with --source (a Redis source resumes through its consumer group)');
  if (values.skip !== undefined) throw new UsageError('--skip and --state-dir: the state dir knows where a cut-short run resumes; run the same command again');
  // With --ordered a batch's outputs are written in pieces between other partitions' lines, and its state changes
  // (one set per batch) would match neither piece at a checkpoint.
  if (values.ordered) throw new UsageError('--ordered and --state-dir cannot be combined yet: a checkpoint could fall inside a batch\'s outputs');
  if (values['reset-state'] && values['new-input']) throw new UsageError('--reset-state and --new-input contradict each other');
}

/** `pystage state redis://HOST:PORT[/DB]/STREAM --group G --shards N [--model NAME]`: the state shard members stored. */
function stateCommand(positionals: string[], values: { group?: string; shards?: string; model?: string[] }): Command {
  const shape = 'pystage state redis://HOST:PORT[/DB]/STREAM --group G --shards N [--model NAME]';
  if (positionals.length !== 2 || !isStreamUrl(positionals[1]!)) throw new UsageError(`pystage state needs a stream URL: ${shape}`);
  if (values.group === undefined || values.shards === undefined) throw new UsageError(`pystage state needs --group and --shards: ${shape}`);
  try {
    parseStreamUrl(positionals[1]!, 'pystage state');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return { kind: 'redis-state', source: positionals[1]!, group: values.group, shards: integer('--shards', values.shards, 256), model: values.model?.[0] ?? null };
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
