/**
 * Finds the real Python interpreter once, at stage start. Spawning through a
 * wrapper (a pyenv shim is a bash script) costs hundreds of milliseconds per
 * server start and puts a process between the worker and its server. A binary
 * found on PATH is used as it is (the server checks its own version); anything
 * else is asked once for sys.executable.
 *
 * Paths are used as given, never resolved through symlinks: a virtualenv's
 * `bin/python` is a symlink to the base interpreter, and Python finds the venv
 * (its pyvenv.cfg, so its site-packages) only when started through that link.
 */
import { execFile } from 'node:child_process';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { PythonStartError } from '../api/errors.js';

const probe = 'import json, sys; print(json.dumps([sys.executable, list(sys.version_info[:3])]))';

/** Resolve `python` (a name on PATH or a path) to the executable to spawn; rejects with PythonStartError. */
export async function resolvePython(python: string, timeoutMs: number): Promise<string> {
  const found = findExecutable(python);
  if (found !== null && isNativeBinary(found)) return found;
  return askPython(python, timeoutMs);
}

function askPython(python: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // -I (isolated): neither the current directory (a json.py there would shadow the stdlib's), nor
    // PYTHON* variables, nor the user's site-packages can change what the probe imports.
    execFile(python, ['-I', '-c', probe], { timeout: timeoutMs }, (err, stdout, stderr) => {
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
        resolve(executable || python);
      } catch {
        reject(new PythonStartError(`"${python}" did not answer like a Python interpreter: ${stdout.slice(0, 200)}`));
      }
    });
  });
}

/** The absolute path of `name` as the shell would find it (symlinks kept), or null. */
function findExecutable(name: string): string | null {
  const candidates = name.includes('/') ? [name] : (process.env.PATH ?? '').split(delimiter).filter((dir) => dir !== '').map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      // statSync follows the link to check what it points to; the path returned is still the link.
      if (statSync(candidate).isFile()) return resolve(candidate);
    } catch { /* not here */ }
  }
  return null;
}

/** True for an ELF or Mach-O binary, false for a script (which may be a wrapper). */
function isNativeBinary(path: string): boolean {
  const magic = Buffer.alloc(4);
  let fd: number | null = null;
  try {
    fd = openSync(path, 'r');
    readSync(fd, magic, 0, 4, 0);
  } catch {
    return false;
  } finally {
    if (fd !== null) closeSync(fd);
  }
  const word = magic.readUInt32BE(0);
  return word === 0x7f454c46 || word === 0xcffaedfe || word === 0xcefaedfe;
}
