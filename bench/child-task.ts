/** The measurements that run inside a fresh node child process (so each has a clean heap and its own RSS). */

/** `partitions: null` means the stage's default (one per CPU core). */
export type ChildTask =
  | { kind: 'api-throughput'; messages: number; partitions: number | null }
  | { kind: 'api-latency'; partitions: number | null; rate: number | null; messages: number; warmup: number }
  | { kind: 'api-startup'; partitions: number; samples: number }
  | { kind: 'api-restart'; partitions: number; kills: number; rate: number; gapMs: number }
  | { kind: 'python-shell'; messages: number }
  | { kind: 'lockstep'; messages: number; inputPath: string };
