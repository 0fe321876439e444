/**
 * The baselines pystage is compared against, each running the same model on the same input:
 * A, an in-process Python loop (pyloop.py); B, npm python-shell in JSON mode, streaming; C, lockstep
 * through the project's own server, one request at a time (the design pystage replaces).
 * Their Python scripts live in bench/baselines/; B and C run inside a fresh node child (runners.ts).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { PythonShell } from 'python-shell';
import { createLogger } from '../src/telemetry/logger.js';
import { resolveOptions } from '../src/api/options.js';
import { encodeFrame } from '../src/protocol/index.js';
import { commandRequest } from '../src/protocol/requests.js';
import { PythonServerProcess, serverAddress, unixSocketPath } from '../workers/server/python-server-process.js';
import { ServerConnection } from '../workers/server/server-connection.js';
import { baselinesDir, modelClass, modelFile, modelName, modelsDir, pyRoot, python, repoRoot, serverScript } from './config.js';
import { messageAt } from './input.js';
import { assertSucceeded, checkFirstOutput, countLines, plainOutput, runMeasured, sample, treeFigures, type RunSample } from './measurement.js';

/** Baseline A: pyloop.py over `inputPath` (holding `messages` lines), stdout to a file; wall time includes interpreter start. */
export async function measurePyloop(inputPath: string, messages: number, workDir: string): Promise<RunSample> {
  const outputPath = join(workDir, 'pyloop-out.jsonl');
  const run = await runMeasured(python(), [
    join(baselinesDir, 'pyloop.py'), '--model-file', modelFile, '--class', modelClass, '--py-root', pyRoot,
  ], { cwd: repoRoot, stdinFile: inputPath, stdoutFile: outputPath });
  assertSucceeded('pyloop', run);
  const outputs = countLines(outputPath);
  checkFirstOutput('pyloop', outputPath, plainOutput);
  rmSync(outputPath);
  return sample('A pyloop', messages, outputs, run.seconds, { ...treeFigures(run), nodeMb: null });
}

export interface ShellResult {
  messages: number;
  outputs: number;
  /** Spawn of the Python process → its exit after the last output was read. */
  seconds: number;
}

/**
 * Baseline B: send `count` messages through python-shell and count the parsed replies. Every message is
 * sent without waiting for replies; the event loop gets a turn every 1,000 sends so replies are read
 * while sending, as a streaming user's code would.
 */
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

export interface LockstepResult {
  messages: number;
  outputs: number;
  /** First request → last reply (server start excluded). */
  seconds: number;
}

/** Baseline C: the first `count` lines of `inputPath` through one server, one request at a time. */
export async function runLockstep(count: number, inputPath: string): Promise<LockstepResult> {
  const lines = readFileSync(inputPath, 'utf8').split('\n', count);
  if (lines.length !== count) throw new Error(`lockstep: ${inputPath} has fewer than ${count} lines`);
  // The stage's own limits and timeouts, from its one defaults object.
  const o = resolveOptions({ models: [{ name: modelName, file: modelFile }], python: python(), logLevel: 'warn' });
  const spoolDir = mkdtempSync(join(tmpdir(), 'pystage-bench-lockstep-'));
  const server = await PythonServerProcess.start({
    python: o.python, serverScript, pythonPath: modelsDir, spoolDir, uniq: 'bench-lockstep-{port}', unixSocket: unixSocketPath(spoolDir, 'lockstep'),
    maxFrameBytes: o.maxFrameBytes, inlineLimit: o.inlineLimit, logLevel: o.logLevel, startTimeoutMs: o.startTimeoutMs,
    logger: createLogger(o.logLevel),
  });
  try {
    const connection = await ServerConnection.open({
      address: serverAddress(server.ready), maxFrameBytes: o.maxFrameBytes, requestTimeoutMs: o.executeTimeoutMs,
    });
    const request = async (build: (id: number) => string) => {
      const id = connection.takeId();
      return JSON.parse((await connection.send(id, encodeFrame(build(id)))).toString('utf8')) as { Cmd: string; Code: number; Error?: unknown };
    };
    const setup = [
      (id: number) => commandRequest('hello', id, { Token: server.token }),
      (id: number) => commandRequest('addModel', id, { ModelName: modelName, ModelFile: modelFile }, {}),
    ];
    for (const build of setup) {
      const reply = await request(build);
      if (reply.Code !== 0) throw new Error(`lockstep: ${reply.Cmd} failed: ${JSON.stringify(reply.Error)}`);
    }
    let outputs = 0;
    const started = performance.now();
    for (const line of lines) {
      // The input line is already a JSON object: spliced in as the InputDictionary, not re-serialised.
      const reply = await request((id) => `{"Cmd":"executeModel","CmdVer":1,"Id":${id},"CmdOptions":{"ModelName":"${modelName}","InputDictionary":${line}}}`);
      if (reply.Code === 0) outputs++;
    }
    const seconds = (performance.now() - started) / 1000;
    await request((id) => commandRequest('stopServer', id, {})).catch(() => {});
    connection.close();
    return { messages: count, outputs, seconds };
  } finally {
    await server.kill();
    rmSync(spoolDir, { recursive: true, force: true });
  }
}
