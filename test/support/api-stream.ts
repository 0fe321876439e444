/** A child process for the memory test: N messages from an async generator through process(); prints the output count. */
import { createStage } from '../../src/index.js';

const count = Number(process.argv[2]);
const stage = await createStage({ partitions: 2, logLevel: 'silent', models: [{ name: 'add', file: 'py/models/add.py' }] });
async function* messages() {
  const pad = 'p'.repeat(400);
  for (let i = 0; i < count; i++) yield { key: `k${i % 101}`, a: i, b: 1, pad };
}
let outputs = 0;
for await (const record of stage.process(messages())) if (record.kind === 'output') outputs++;
await stage.close();
process.stdout.write(`${outputs}\n`);
process.exitCode = outputs === count ? 0 : 1;
