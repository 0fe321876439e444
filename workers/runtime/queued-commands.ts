/**
 * The operations of commands that go through the queue (behind every message submitted before them):
 * metadata commands, and the replacement of the partition's state.
 */
import { encodeFrame, type CommandName } from '../../src/protocol/index.js';
import { commandRequest, restoreStatePayloads } from '../../src/protocol/requests.js';
import type { PystageError } from '../../src/api/errors.js';
import type { WorkerConfig } from '../../src/engine/worker-protocol.js';
import { StateTable, type StateSnapshot } from '../../src/context/state-table.js';
import type { Operation } from './exec-plan.js';
import { commandError, isLoading, parseReply } from './direct-request.js';
import { loadFailure } from './recovery-policy.js';
import { replyError } from './reply-map.js';

type Settled<T> = { resolve: (value: T) => void; reject: (err: PystageError) => void };

/** A command's operation: resolves with the server's result, rejects with the typed refusal. */
export function commandOperation(
  c: WorkerConfig, cmd: CommandName, cmdOptions: Record<string, unknown>, modelOptions: Record<string, unknown> | undefined,
  { resolve, reject }: Settled<unknown>,
): Operation {
  const loading = isLoading(cmd);
  return {
    frame: (id, checksum) => encodeFrame(commandRequest(cmd, id, cmdOptions, modelOptions), c.maxFrameBytes, checksum),
    settle: (payload) => {
      const reply = parseReply(payload);
      if (reply.Code >= 0) resolve(reply.Result);
      else reject(commandError(c.partition, cmd, cmdOptions, reply));
    },
    giveUp: reject,
    crashes: 0,
    ...(loading ? {
      timeoutMs: c.loadTimeoutMs,
      failure: (hung: boolean, crashes: number) => loadFailure(c, cmd, cmdOptions.ModelName as string, hung, crashes),
    } : {}),
  };
}

/**
 * The operations that replace the partition's state with `snapshot`, and change `worker` (the worker's
 * copy) as their replies arrive.
 */
export function stateLoadOperations(c: WorkerConfig, snapshot: StateSnapshot, worker: StateTable, { resolve, reject }: Settled<null>): Operation[] {
  const table = new StateTable();
  table.load(snapshot);
  // In as many frames as restoring after a restart takes. Each frame's entries reach the worker's copy
  // when its reply arrives, so a restart between two frames restores the frames already done and then
  // resends the rest (the first replaces, the others add).
  const frames = [...restoreStatePayloads(table.entries(), Math.floor(c.maxFrameBytes / 4))];
  return frames.map((restore, i) => ({
    crashes: 0,
    frame: (id, checksum) => encodeFrame(restore.request(id), c.maxFrameBytes, checksum),
    settle: (payload) => {
      const reply = parseReply(payload);
      if (reply.Code !== 0) {
        reject(replyError(reply.Code, reply.Error, c.partition, undefined, 'restoreState'));
        return;
      }
      if (i === 0) worker.load({});
      for (const [model, key, text, expiresAt] of restore.entries) worker.set(model, key, text, expiresAt);
      if (i === frames.length - 1) resolve(null);
    },
    giveUp: reject,
  }));
}
