/** Drain an async iterable of stage records into an array. */
import type { StageRecord } from '../../src/index.js';

export async function collect(records: AsyncIterable<StageRecord>): Promise<StageRecord[]> {
  const all: StageRecord[] = [];
  for await (const r of records) all.push(r);
  return all;
}
