/** Where the tests find the repository, the built CLI, the sample and fixture models and the shared frame vectors. */
import { fileURLToPath } from 'node:url';

// This file runs as dist/test/support/paths.js: three levels up is the repository root.
const fromRoot = (path: string): string => fileURLToPath(new URL(`../../../${path}`, import.meta.url));

/** The repository root (the CLI's default working directory in tests). */
export const repoRoot = fromRoot('');
/** The built CLI entry point. */
export const cliPath = fromRoot('dist/src/cli.js');
/** py/models/: the sample models shipped with the package. */
export const modelsDir = fromRoot('py/models/');
/** test/fixtures/models/: models written to misbehave or to probe one feature. */
export const fixtures = fromRoot('test/fixtures/models/');
/** test/vectors/: frame byte streams shared with the Python tests. */
export const vectorsDir = fromRoot('test/vectors/');
/** The Python server's protocol constants, the reference for the TypeScript ones. */
export const pythonProtocol = fromRoot('py/pystage/protocol.py');
