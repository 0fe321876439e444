/** Where the harness finds the project's pieces, resolved from the built file's location (dist/bench/). */
import { fileURLToPath } from 'node:url';

/** The repository root (the directory holding package.json). */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** The built CLI. */
export const cliScript = fileURLToPath(new URL('../src/cli.js', import.meta.url));
/** The built child entry point that runs one in-process measurement. */
export const childScript = fileURLToPath(new URL('./child-entry.js', import.meta.url));
/** The project's Python server. */
export const serverScript = fileURLToPath(new URL('../../py/server.py', import.meta.url));
/** The Python package root (holds `pystage`, which the sample models import). */
export const pyRoot = fileURLToPath(new URL('../../py/', import.meta.url));
/** The model every runner uses. */
export const modelFile = fileURLToPath(new URL('../../py/models/add.py', import.meta.url));
/** The directory of the model file (the servers' python path). */
export const modelsDir = fileURLToPath(new URL('../../py/models/', import.meta.url));
/** Python scripts of the baselines live next to their sources, not in dist/. */
export const baselinesDir = fileURLToPath(new URL('../../bench/baselines/', import.meta.url));
/** Environment variable through which the harness hands its resolved interpreter to child processes. */
export const PYTHON_VARIABLE = 'PYSTAGE_BENCH_PYTHON';

/** The interpreter every runner uses (see bench-config.ts for why it is resolved once). */
export function python(): string {
  return process.env[PYTHON_VARIABLE] ?? 'python3';
}
/** The model's name in the stage, and the class the Python baselines load. */
export const modelName = 'add';
export const modelClass = 'Add';
