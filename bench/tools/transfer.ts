/**
 * Main ↔ worker transfer: how fast one exec task's messages and results cross
 * a MessagePort as structured-clone arrays, as msgpackr buffers (transferred),
 * and as one joined string (what pystage sends). Run: node dist/bench/tools/transfer.js
 */
import { MessageChannel } from 'node:worker_threads';
import { Packr } from 'msgpackr';

const BATCH = 1024;
const ROUNDS = 400;
const packr = new Packr({ useRecords: false });

const inputs = Array.from({ length: BATCH }, (_, i) => JSON.stringify({ key: `acct-${i % 1000}`, a: i, b: i % 7, seq: i }));
const outputTexts = inputs.map((_, i) => `o{"sum":${i * 2}}`);
const outputObjects = inputs.map((_, i) => [{ model: 'add', output: { sum: i * 2 } }]);

type Codec = { name: string; send: (port: MessagePort) => void; receive: (message: unknown) => void };

const codecs: Codec[] = [
  { name: 'inputs: clone string[]', send: (p) => p.postMessage(inputs), receive: () => {} },
  { name: 'inputs: msgpackr', send: (p) => postPacked(p, inputs), receive: unpack },
  { name: 'inputs: one joined string', send: (p) => p.postMessage(inputs.join(',\n')), receive: () => {} },
  { name: 'results: clone objects', send: (p) => p.postMessage(outputObjects), receive: () => {} },
  { name: 'results: msgpackr objects', send: (p) => postPacked(p, outputObjects), receive: unpack },
  { name: 'results: one joined string', send: (p) => p.postMessage(outputTexts.join('\n')), receive: (m) => (m as string).split('\n') },
];

function postPacked(port: MessagePort, value: unknown): void {
  const packed = packr.pack(value);
  // msgpackr packs into a shared buffer: copy into one we own so it can be transferred, not cloned.
  const owned = new ArrayBuffer(packed.length);
  new Uint8Array(owned).set(packed);
  port.postMessage(owned, [owned]);
}

function unpack(message: unknown): void {
  packr.unpack(new Uint8Array(message as ArrayBuffer));
}

async function measure(codec: Codec): Promise<number> {
  const { port1, port2 } = new MessageChannel();
  let received = 0;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    port2.on('message', (m) => {
      codec.receive(m);
      if (++received === ROUNDS) resolve();
    });
    for (let r = 0; r < ROUNDS; r++) codec.send(port1 as unknown as MessagePort);
  });
  port1.close();
  return (ROUNDS * BATCH) / ((performance.now() - start) / 1000);
}

for (const codec of codecs) {
  const rates: number[] = [];
  for (let i = 0; i < 3; i++) rates.push(await measure(codec));
  rates.sort((a, b) => a - b);
  console.log(`${codec.name.padEnd(30)} ${(rates[1]! / 1e6).toFixed(2)} M messages/s (median of 3)`);
}
