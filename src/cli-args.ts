/**
 * The CLI's command line: parsed and validated into StageOptions, or a
 * UsageError saying what was wrong (exit code 2).
 */
import { parseArgs } from 'node:util';
import type { StageOptions } from './options.js';
import { redisArgs, redisUsage, type RedisCommand } from './redis/redis-args.js';
import type { ModelSpec } from './worker-protocol.js';

export const usage = `Usage: pystage run --model NAME=FILE[:CLASS] [--model ...] [options] < input.jsonl > output.jsonl

Runs every JSON line of stdin through Python models, partitioned by key.

Options:
  --model NAME=FILE[:CLASS]   a model: its name, its file, and optionally its class (repeatable)
  --model-options NAME=JSON   constructor options of a model, a JSON object (repeatable)
  --init NAME=DATAFILE        call the model's init(DATAFILE) after loading (repeatable)
  --partitions N              partitions = worker threads = Python servers (default: CPU cores)
  --key FIELD                 the field that picks the partition (default: key)
  --route FIELD               send each message only to the model its FIELD names
  --ordered                   emit outputs in global input order (default: per-partition order)
  --python PYTHON             the Python interpreter (default: python3)
  --python-path DIR           where model files live (default: the first model file's directory)
  --errors FILE|STREAM        where error lines go (default: stderr); a redis:// stream URL with --source
  --execute-timeout MS        a model call taking longer is given up and its server replaced (default: 30000)
  --log-level LEVEL           trace, debug, info, warn, error, fatal or silent (default: warn)
  -h, --help                  this help
  -v, --version               the version

${redisUsage}

Output: one line per model output:
  {"offset":N,"key":K,"partition":P,"model":NAME,"output":{...}}
Exit codes: 0 the stream was processed (even with per-message errors), 1 the stage could not run, 2 bad usage.`;

/** A command line that cannot be run. */
export class UsageError extends Error {
  readonly code = 'PYSTAGE_USAGE';
}

export type Command =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'run'; options: StageOptions; errorsFile: string | null; redis: RedisCommand | null };

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
        partitions: { type: 'string' },
        key: { type: 'string' },
        route: { type: 'string' },
        ordered: { type: 'boolean' },
        python: { type: 'string' },
        'python-path': { type: 'string' },
        errors: { type: 'string' },
        'execute-timeout': { type: 'string' },
        'log-level': { type: 'string' },
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

  const models = values.model.map(parseModel);
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
    modelNamed(byName, '--init', name).initData = dataFile;
  }
  const options: StageOptions = {
    models,
    partitions: values.partitions === undefined ? undefined : integer('--partitions', values.partitions, 256),
    keyField: values.key,
    routeField: values.route,
    ordered: values.ordered ?? false,
    python: values.python,
    pythonPath: values['python-path'],
    executeTimeoutMs: values['execute-timeout'] === undefined ? undefined : integer('--execute-timeout', values['execute-timeout'], 86_400_000),
    logLevel: values['log-level'] ?? 'warn',
  };
  const redis = redisArgs(values, (flag, text) => integer(flag, text, 86_400_000));
  return { kind: 'run', options, errorsFile: redis === null ? values.errors ?? null : null, redis };
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

function integer(flag: string, text: string, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > max) throw new UsageError(`${flag} must be an integer from 1 to ${max}, got "${text}"`);
  return n;
}
