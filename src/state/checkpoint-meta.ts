/**
 * What a checkpoint records besides the state, per partition: where its input stands and how long the
 * output files were, atomically with the state (one store transaction). Every partition's meta of one
 * checkpoint carries the same job, file lengths and `seq`; `below` is its own.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';

/** What makes two runs the same job: their input's first bytes, the partition count, the model names. */
export interface JobIdentity {
  /** sha256 of the input's first FINGERPRINT_BYTES bytes and how many there were; null when the input is not a file. */
  fingerprint: string | null;
  partitions: number;
  models: string[];
}

export interface CheckpointMeta {
  job: JobIdentity;
  /** Counts checkpoints on this store; the same for every partition of one checkpoint. */
  seq: number;
  /** The run had read and finished its whole input: the next run takes its input as new. */
  finished: boolean;
  /** Every input line of this partition before this offset is reflected in the state and the files; none after. */
  below: number;
  /** The same for the lines rejected before reaching a partition (not a JSON object, no route). */
  rejectsBelow: number;
  /** Bytes of the --output and --errors files at the checkpoint (null: not a file). */
  outputBytes: number | null;
  errorBytes: number | null;
  /** Wall-clock time of the checkpoint (ISO 8601), for people. */
  at: string;
}

/** How much of an input's beginning the fingerprint covers. */
export const FINGERPRINT_BYTES = 64 * 1024;

/** The fingerprint of a regular file's beginning (read with pread: the reader's position is untouched). */
export function fingerprintOf(path: string | number): string {
  const fd = typeof path === 'number' ? path : openSync(path, 'r');
  try {
    const buf = Buffer.alloc(FINGERPRINT_BYTES);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return `${got}:${createHash('sha256').update(buf.subarray(0, got)).digest('hex')}`;
  } finally {
    if (typeof path !== 'number') closeSync(fd);
  }
}

/** What differs between a stored job and this run's, in words (empty: the same job). */
export function jobDifferences(stored: JobIdentity, now: JobIdentity): string[] {
  const out: string[] = [];
  if (stored.fingerprint !== now.fingerprint) {
    out.push(now.fingerprint === null
      ? 'the input is not a regular file (the cut-short run read one)'
      : stored.fingerprint === null ? 'the input is a file (the cut-short run read a pipe)' : 'the input\'s beginning differs (another file, or it was changed)');
  }
  if (stored.partitions !== now.partitions) out.push(`partitions: ${stored.partitions} then, ${now.partitions} now`);
  const then = [...stored.models].sort().join(',');
  const current = [...now.models].sort().join(',');
  if (then !== current) out.push(`models: ${then} then, ${current} now`);
  return out;
}

/** The lowest offset below which every partition's (and the rejects') lines are reflected. */
export function lowWater(metas: CheckpointMeta[]): number {
  return Math.min(...metas.map((m) => Math.min(m.below, m.rejectsBelow)));
}
