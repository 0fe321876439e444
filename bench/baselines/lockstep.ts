/**
 * Baseline C: lockstep through the project's own server — send one executeModel, wait for its
 * reply, send the next (the design pystage replaces). Runs inside a child node process.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/logger.js';
import { encodeFrame } from '../../src/protocol/index.js';
import { commandRequest } from '../../src/protocol/requests.js';
import { PythonServerProcess } from '../../workers/python-server-process.js';
import { ServerConnection } from '../../workers/server-connection.js';
import { modelFile, modelName, modelsDir, python, serverScript } from '../paths.js';

export interface LockstepResult {
  messages: number;
  outputs: number;
  /** First request → last reply (server start excluded). */
  seconds: number;
}

const MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** Run the first `count` lines of `inputPath` through one server, one request at a time. */
export async function runLockstep(count: number, inputPath: string): Promise<LockstepResult> {
  const lines = readFileSync(inputPath, 'utf8').split('\n', count);
  if (lines.length !== count) throw new Error(`lockstep: ${inputPath} has fewer than ${count} lines`);
  const spoolDir = mkdtempSync(join(tmpdir(), 'pystage-bench-lockstep-'));
  const server = await PythonServerProcess.start({
    python: python(), serverScript, pythonPath: modelsDir, spoolDir, uniq: 'bench-lockstep-{port}',
    maxFrameBytes: MAX_FRAME_BYTES, inlineLimit: 1024 * 1024, logLevel: 'warn', startTimeoutMs: 10_000,
    logger: createLogger('warn'),
  });
  try {
    const connection = await ServerConnection.open({
      host: server.ready.host ?? '127.0.0.1', port: server.ready.port!, maxFrameBytes: MAX_FRAME_BYTES, requestTimeoutMs: 30_000,
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
