/**
 * Bringing a new connection (and a new server) to where the partition is: the hello, the restore of
 * the partition's state, the replay of the model registry, and the strict loads of a start. All of it
 * is sent outside the queue (sendDirect), before the queue may send.
 */
import { rmSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import { ConnectionBrokenError, PythonStartError } from '../../src/api/errors.js';
import type { Logger } from '../../src/telemetry/logger.js';
import type { CommandName } from '../../src/protocol/index.js';
import { restoreStatePayloads } from '../../src/protocol/requests.js';
import type { ModelSpec, WorkerConfig } from '../../src/engine/worker-protocol.js';
import { unixSocketPath, type PythonServerProcess } from '../server/python-server-process.js';
import type { ServerConnection } from '../server/server-connection.js';
import type { SpoolFiles } from '../server/spool-files.js';
import { commandError, commandPayload, isLoading, loadOptions, sendDirect } from './direct-request.js';
import type { ModelRegistry } from './model-registry.js';
import { replyError } from './reply-map.js';
import { delay, isDeterministic, loadFailure } from './recovery-policy.js';

/** The worker's config plus the interpreter its start task named. */
export type RuntimeConfig = WorkerConfig & { python: string };

/** The options of the `launches`-th server of this partition. */
export function serverStartOptions(c: RuntimeConfig, launches: number, logger: Logger): Parameters<typeof PythonServerProcess.start>[0] {
  return {
    python: c.python, serverScript: c.serverScript, pythonPath: c.pythonPath, spoolDir: c.spoolDir,
    extraPythonPaths: c.extraPythonPaths, allowRoots: c.allowRoots,
    // One socket per start: a killed server's file may still be there (the server unlinks a stale one, too).
    unixSocket: unixSocketPath(c.spoolDir, `p${c.partition}.t${threadId}.${launches}`),
    uniq: `${c.stageId}.p${c.partition}.t${threadId}.${launches}.{port}`,
    maxFrameBytes: c.maxFrameBytes, inlineLimit: c.inlineLimit, maxOutputBytes: c.maxOutputBytes, logLevel: c.logLevel, startTimeoutMs: c.startTimeoutMs,
    nanAsNull: c.nanAsNull, mathThreads: c.mathThreads,
    logger,
  };
}

/** The server is done: kill its process group (unless it exited) and remove output files and the socket it left behind. */
export async function retireServer(server: PythonServerProcess, spool: SpoolFiles, kill = true): Promise<void> {
  if (kill) await server.kill();
  else await server.whenExited();
  await spool.removeOutputsOf(server.spawnedPid);
  // A server that exits removes its socket itself; one that was killed cannot.
  if (server.unixSocket !== null) rmSync(server.unixSocket, { force: true });
}

/** Authenticate a new connection and ask for progress frames (and host requests, with a host). */
export async function sayHello(connection: ServerConnection, c: RuntimeConfig, token: string, withHost: boolean): Promise<void> {
  const progressMs = Math.max(10, Math.min(1000, Math.floor(c.executeTimeoutMs / 5)));
  const hello = await sendDirect(connection, c.maxFrameBytes, commandPayload('hello', {
    Token: token, Progress: progressMs, Checksum: 'crc32', Partition: c.partition, State: { MaxBytes: c.maxStateBytes },
    ...(withHost ? { Host: { TimeoutMs: c.hostRequestTimeoutMs } } : {}),
  }));
  if (hello.Code !== 0) throw replyError(hello.Code, hello.Error, c.partition, undefined, 'hello');
  // A server that did not echo the option keeps MD5 (protocol v1's default) both ways.
  if ((hello.Result as { Checksum?: unknown } | undefined)?.Checksum === 'crc32') connection.checksum = 'crc32';
}

/**
 * Give the server the partition's state, in as many frames as it needs, each with at most a quarter of
 * the frame limit of entries (no single huge string here, no single huge json.loads there): the first
 * replaces the server's state, the rest add to it.
 */
export async function restoreStateOnto(connection: ServerConnection, entries: Parameters<typeof restoreStatePayloads>[0], c: RuntimeConfig): Promise<void> {
  for (const frame of restoreStatePayloads(entries, Math.floor(c.maxFrameBytes / 4))) {
    const restored = await sendDirect(connection, c.maxFrameBytes, frame.request);
    if (restored.Code !== 0) throw replyError(restored.Code, restored.Error, c.partition, undefined, 'restoreState');
  }
}

/** A command outside the queue; loading ones get the load timeout. */
function direct(connection: ServerConnection, c: RuntimeConfig, cmd: CommandName, cmdOptions: Record<string, unknown>, modelOptions?: Record<string, unknown>) {
  return sendDirect(connection, c.maxFrameBytes, commandPayload(cmd, cmdOptions, modelOptions), isLoading(cmd) ? c.loadTimeoutMs : undefined);
}

/** What loadModelsOnto needs of the partition. */
export interface ModelLoadTarget {
  connection: ServerConnection;
  server: PythonServerProcess;
  config: RuntimeConfig;
  logger: Logger;
  registry: ModelRegistry;
  /** Servers spawned so far (this one included): names a restarted server in errors. */
  launches: number;
}

/**
 * Replay the registry onto a new server (a model that fails now is logged, the partition goes on), then
 * load the `toLoad` models strictly (a refusal is the start's error), moving each into the registry.
 */
export async function loadModelsOnto(t: ModelLoadTarget, toLoad: ModelSpec[]): Promise<void> {
  const c = t.config;
  // A model that loaded before and fails now (its file changed on disk): log it, keep the rest of the partition going.
  const replay = async (cmd: CommandName, cmdOptions: Record<string, unknown>, modelOptions?: Record<string, unknown>): Promise<void> => {
    const reply = await direct(t.connection, c, cmd, cmdOptions, modelOptions);
    if (reply.Code < 0) t.logger.error({ cmd, model: cmdOptions.ModelName, error: reply.Error }, 'replaying a model onto the restarted server failed');
  };
  const load = async (cmd: CommandName, cmdOptions: Record<string, unknown>, modelOptions?: Record<string, unknown>): Promise<void> => {
    const reply = await direct(t.connection, c, cmd, cmdOptions, modelOptions);
    if (reply.Code < 0) throw commandError(c.partition, cmd, cmdOptions, reply);
  };
  let current: ModelSpec | null = null;
  try {
    for (const spec of t.registry.specs()) {
      current = spec;
      await replay('addModel', loadOptions(spec), spec.options ?? {});
      if (spec.initData !== undefined) await replay('initModel', { ModelName: spec.name, DataFile: spec.initData });
    }
    while (toLoad.length > 0) {
      const spec = current = toLoad[0]!;
      await load('addModel', loadOptions(spec), spec.options ?? {});
      if (spec.initData !== undefined) await load('initModel', { ModelName: spec.name, DataFile: spec.initData });
      t.registry.set(spec);
      toLoad.shift();
    }
  } catch (err) {
    if (isDeterministic(err)) throw err;
    const name = current?.name ?? '?';
    if (err instanceof ConnectionBrokenError && err.reason === 'timeout') {
      throw loadFailure(c, 'addModel', name, true, 0);
    }
    // Killed by a signal while loading (an outside kill, the OOM killer): a free retry, like any outside kill.
    // Anything else (a model whose constructor kills or breaks its fresh server) is our failure and must
    // use up retries, or the partition would respawn servers forever.
    const server = t.server;
    const exited = await Promise.race([server.whenExited().then(() => true), delay(500).then(() => false)]);
    const signal = exited ? server.exitSignal : null;
    const how = !exited ? '' : signal ? ` (the server was killed by ${signal})` : ` (the server exited with code ${server.exitCode} while loading it)`;
    throw new PythonStartError(
      `loading model "${name}" onto the ${t.launches > 1 ? 'restarted' : 'new'} server failed: ${(err as Error).message}${how}`,
      { partition: c.partition, type: signal ? 'Killed' : 'LoadCrash' },
    );
  }
}
