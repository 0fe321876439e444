/**
 * `npm start`: a built-in example. Generates a stream of messages and runs it
 * through two of the sample models in py/models, printing a few outputs and
 * the summary.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createStage } from './stage.js';

const models = fileURLToPath(new URL('../../../py/models/', import.meta.url));
const count = Number(process.env.PYSTAGE_EXAMPLE_MESSAGES ?? 200_000);

async function* messages() {
  for (let seq = 0; seq < count; seq++) {
    yield { key: `acct-${seq % 1000}`, a: seq % 100, b: (seq * 7) % 13, seq };
  }
}

const stage = await createStage({
  partitions: availableParallelism(),
  pythonPath: models,
  logLevel: 'warn',
  models: [
    { name: 'add', file: 'add.py' },
    { name: 'total', file: 'running_total.py' },
  ],
});
console.log(`pystage example: ${count} messages through models "add" and "total" on ${stage.partitions} partitions`);
let shown = 0;
for await (const record of stage.process(messages())) {
  if (shown < 6 && record.kind === 'output') {
    console.log(JSON.stringify(record));
    shown++;
  } else if (record.kind === 'error') {
    console.error(JSON.stringify(record));
  }
}
await stage.close();
const stats = stage.stats();
console.log(JSON.stringify({ summary: { ...stats, seconds: +stats.seconds.toFixed(3), msgPerSec: Math.round(stats.msgPerSec) } }));
