/**
 * Finds the real Python interpreter once, at stage start. Spawning through a
 * wrapper (a pyenv shim is a bash script) costs hundreds of milliseconds per
 * start and puts a process between the worker and its server; asking Python
 * for sys.executable avoids both, and checks the version with a clear error.
 */
import { execFile } from 'node:child_process';
import { PythonStartError } from './errors.js';

/** The interpreter to spawn and its version. */
export interface PythonInterpreter {
  executable: string;
  version: [number, number, number];
}

const probe = 'import json, sys; print(json.dumps([sys.executable, list(sys.version_info[:3])]))';

/** Resolve `python` (a name on PATH or a path) to its real executable; rejects with PythonStartError. */
export function resolvePython(python: string, timeoutMs: number): Promise<PythonInterpreter> {
  return new Promise((resolve, reject) => {
    execFile(python, ['-c', probe], { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        reject(new PythonStartError(code === 'ENOENT'
          ? `Python interpreter "${python}" was not found: install Python 3.9+ or pass its path with --python`
          : `Python interpreter "${python}" could not run: ${stderr.trim() || err.message}`));
        return;
      }
      try {
        const [executable, version] = JSON.parse(stdout) as [string, [number, number, number]];
        if (version[0] < 3 || (version[0] === 3 && version[1] < 9)) {
          reject(new PythonStartError(`Python ${version.join('.')} at "${python}" is too old: pystage needs Python 3.9+`));
          return;
        }
        resolve({ executable: executable || python, version });
      } catch {
        reject(new PythonStartError(`"${python}" did not answer like a Python interpreter: ${stdout.slice(0, 200)}`));
      }
    });
  });
}
