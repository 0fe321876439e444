/** The API's sources, cut into the batches a run reads. */

/** Batches of a source: a sync iterable is chunked without waiting; an async one passes values as they come. */
export async function* inBatches<T>(source: AsyncIterable<T> | Iterable<T>): AsyncGenerator<T[]> {
  if (Symbol.iterator in source) {
    let batch: T[] = [];
    for (const value of source) {
      batch.push(value);
      if (batch.length === 256) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
    return;
  }
  for await (const value of source) yield [value];
}

