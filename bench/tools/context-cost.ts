/**
 * What self.context costs: API throughput of the benchmark model (`py/models/add.py`) against the same
 * work touching `self.context.state` on every message, and making one host request per message.
 * `node dist/bench/tools/context-cost.js [--messages N] [--rounds R] [--partitions P]`; runs are interleaved
 * (plain, state, request, plain, …) and the medians printed as a table and one JSON line.
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createStage, type ModelSpec } from '../../src/index.js';
import { modelFile, modelsDir, python } from '../config.js';
import { messages } from '../input.js';
import { median } from '../measurement.js';

/** The variants' models live in the source tree next to this tool, not in dist/. */
const benchModels = fileURLToPath(new URL('../../../bench/tools/models/', import.meta.url));

/** One variant of the model, and the stage options it needs. */
interface Variant {
  name: string;
  model: ModelSpec;
  pythonPath: string;
}

export const variants: Variant[] = [
  { name: 'plain', model: { name: 'add', file: modelFile }, pythonPath: modelsDir },
  { name: 'state', model: { name: 'add', file: 'add_with_state.py' }, pythonPath: benchModels },
  { name: 'request', model: { name: 'add', file: 'add_with_request.py' }, pythonPath: benchModels },
];

/** Messages per second of one variant through the API (first message offered to last output). */
export async function measure(variant: Variant, count: number, partitions: number | undefined): Promise<{ msgPerSec: number; outputs: number; errors: number }> {
  const stage = await createStage({
    models: [variant.model], pythonPath: variant.pythonPath, partitions, python: python(), logLevel: 'warn',
    handlers: { offset: (b: number) => b },
  });
  let outputs = 0;
  let errors = 0;
  const started = performance.now();
  try {
    for await (const record of stage.process(messages(count))) {
      if (record.kind === 'output') outputs++;
      else errors++;
    }
  } finally {
    await stage.close();
  }
  return { msgPerSec: count / ((performance.now() - started) / 1000), outputs, errors };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { messages: { type: 'string' }, rounds: { type: 'string' }, partitions: { type: 'string' } } });
  const count = Number(values.messages ?? 200_000);
  const rounds = Number(values.rounds ?? 3);
  const partitions = values.partitions === undefined ? undefined : Number(values.partitions);
  const samples = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const variant of variants) {
      const result = await measure(variant, count, partitions);
      if (result.outputs !== count) throw new Error(`${variant.name}: ${result.outputs} outputs and ${result.errors} errors for ${count} messages`);
      samples.get(variant.name)!.push(result.msgPerSec);
      process.stderr.write(`round ${r + 1} ${variant.name}: ${Math.round(result.msgPerSec)} msg/s\n`);
    }
  }
  const plain = median(samples.get('plain')!);
  process.stdout.write(`| model | msg/s (median of ${rounds}) | × plain |\n|---|---|---|\n`);
  for (const [name, xs] of samples) process.stdout.write(`| ${name} | ${Math.round(median(xs)).toLocaleString('en-US')} | ${(median(xs) / plain).toFixed(2)}× |\n`);
  process.stdout.write(JSON.stringify({ messages: count, rounds, partitions: partitions ?? 'default', medians: Object.fromEntries([...samples].map(([k, xs]) => [k, Math.round(median(xs))])) }) + '\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
