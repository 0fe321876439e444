/**
 * `pystage state DIR [--model NAME] [--partition P]`: a state dir's entries as JSON lines
 * `{"partition":P,"model":M,"key":K,"value":V}`, V being the stored JSON text spliced in byte for byte
 * (integers beyond 2^53 keep their digits), in store order (partition, model, key bytes). Read-only.
 */
import type { Writable } from 'node:stream';
import { EmbeddedStateStore } from '../state/embedded-state-store.js';
import { LineWriter } from './line-writer.js';

export async function printState(dir: string, model: string | null, partition: number | null, out: Writable): Promise<number> {
  const store = EmbeddedStateStore.open(dir, { readOnly: true });
  const writer = new LineWriter(out);
  let lines = 0;
  try {
    for (const entry of store.entries(partition ?? undefined, model ?? undefined)) {
      const p = entry.partition;
      if (entry.expiresAt !== null && entry.expiresAt <= Date.now()) continue;
      writer.text(`{"partition":${p},"model":${JSON.stringify(entry.model)},"key":${JSON.stringify(entry.key)},"value":`).text(entry.text).text('}').endLine();
      lines++;
      if (lines % 4096 === 0) await writer.ready();
    }
  } finally {
    await writer.end();
    await store.close();
  }
  return lines;
}
