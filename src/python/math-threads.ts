/**
 * Threads for numerical libraries in each Python server. numpy's BLAS (OpenBLAS, MKL, Accelerate) and
 * OpenMP code start one thread per core in every process by default, so N servers on C cores would run
 * N×C math threads that fight for the same cores (measured: 3× the Python CPU for the same work with
 * 2 servers on 2 cores). Each server gets its share of the cores instead, unless the user set a variable.
 */
import { availableParallelism } from 'node:os';

/** The variables the common math libraries read for their thread count. */
export const MATH_THREAD_VARIABLES = [
  'OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'VECLIB_MAXIMUM_THREADS', 'NUMEXPR_NUM_THREADS',
] as const;

/** Each server's share of the cores: cores ÷ partitions, at least 1. */
export function mathThreadsPerServer(partitions: number, cores = availableParallelism()): number {
  return Math.max(1, Math.floor(cores / partitions));
}

/** The variables to add to a server's environment: those `env` does not set already (the user's win). */
export function mathThreadEnv(threads: number, env: NodeJS.ProcessEnv): Record<string, string> {
  const added: Record<string, string> = {};
  for (const name of MATH_THREAD_VARIABLES) if (env[name] === undefined) added[name] = String(threads);
  return added;
}
