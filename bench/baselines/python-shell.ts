/**
 * Baseline B: npm python-shell in JSON mode, streaming. Runs inside a child node process
 * (child-entry.ts). Every message is sent without waiting for replies; the event loop gets a
 * turn every 1,000 sends so replies are read while sending, as a streaming user's code would.
 */
import { join } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { PythonShell } from 'python-shell';
import { messageAt } from '../input-file.js';
import { baselinesDir, modelClass, modelFile, pyRoot, python } from '../paths.js';

export interface ShellResult {
  messages: number;
  outputs: number;
  /** Spawn of the Python process → its exit after the last output was read. */
  seconds: number;
}

/** Send `count` messages through python-shell and count the parsed replies. */
export async function runPythonShell(count: number): Promise<ShellResult> {
  const started = performance.now();
  const shell = new PythonShell(join(baselinesDir, 'shell_worker.py'), {
    mode: 'json', pythonPath: python(),
    args: ['--model-file', modelFile, '--class', modelClass, '--py-root', pyRoot],
  });
  let outputs = 0;
  shell.on('message', () => { outputs++; });
  for (let i = 0; i < count; i++) {
    shell.send(messageAt(i));
    if (i % 1000 === 999) await yieldToEventLoop();
  }
  await new Promise<void>((resolve, reject) => shell.end((err) => (err ? reject(err) : resolve())));
  return { messages: count, outputs, seconds: (performance.now() - started) / 1000 };
}
