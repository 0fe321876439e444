/**
 * How one exec task becomes requests: per model, one executeBatch of the messages that fit in a
 * frame and one executeModel through a spool file per message over the inline limit. Each
 * request is an Operation for the runtime's queue; a batch knows how to split itself when the
 * server broke while running it.
 */
import { type Outcomes } from '../../src/engine/batch.js';
import { RoutingError, type PystageError } from '../../src/api/errors.js';
import { Scan, scanObject } from '../../src/protocol/json-scan.js';
import { encodeFrame, type Checksum, type ReplyError } from '../../src/protocol/index.js';
import { readLeanBatchReply, readReplyHead } from '../../src/protocol/replies.js';
import { batchFrame, commandRequest } from '../../src/protocol/requests.js';
import type { ExecTask } from '../../src/engine/worker-protocol.js';
import { itemError, mapOutput, OutcomeTable, replyError } from './reply-map.js';
import type { SpoolFiles } from '../server/spool-files.js';
import type { StateChanges } from '../../src/context/state-table.js';

/** One request to the server, kept until it is answered or given up. */
export interface Operation {
  /** The request's frame for a connection-assigned id, with the checksum the connection agreed on. */
  frame(id: number, checksum: Checksum): Buffer;
  /**
   * Called with the reply's payload bytes, one reply at a time in reply order (the next waits for a
   * returned promise). A throw or rejection means the reply could not be used: the runtime gives the
   * operation up and runs everything after it again on a server restored without it.
   */
  settle(payload: Buffer): void | Promise<void>;
  /** Called when the operation is given up. */
  giveUp(err: PystageError): void;
  /** Times the server died or hung while this operation was alone in flight. */
  crashes: number;
  /** Messages the request runs (0 for a command), for counting re-executions. */
  messages?: number;
  /** Set once sent: sending it again (or a piece of it) re-executes its messages. */
  sentBefore?: boolean;
  /** In flight when the server broke with others: resent alone until it is answered. */
  suspect?: boolean;
  /** A batch of several messages: what replaces it after a break, `done` of them known finished. */
  split?(done: number): Operation[];
  /** How long the server may stay silent on it; default: the execute timeout. */
  timeoutMs?: number;
  /** The error when it is given up for hanging or for crashing its server too often; default: poison. */
  failure?(hung: boolean, crashes: number): PystageError;
  /** For a host request made while this runs: the model, and the key of its message at `index`. */
  context?(index: number): { model: string; key: unknown };
}

/** What a plan needs from the runtime. */
export interface ExecEnv {
  partition: number;
  inlineLimit: number;
  maxFrameBytes: number;
  spool: SpoolFiles;
  /** The key field's name, as bytes (a host request's context reads the message's key). */
  keyName: Uint8Array;
  submit(operation: Operation): void;
  /** Read a reply's State value (payload[start, end)) as changes, without applying them. */
  readState(model: string, payload: Buffer, start: number, end: number): StateChanges;
  /** Apply a used reply's changes to the partition's state (in reply order); returns them. */
  applyState(changes: StateChanges): StateChanges;
}

const RESULT_ERROR_FILE = [Buffer.from('Result'), Buffer.from('Error'), Buffer.from('OutputFile'), Buffer.from('State')];

/** The key of message i of a task (parsed; null when it has none), for a host request's context. */
function keyOf(task: ExecTask, i: number, env: ExecEnv): unknown {
  const spans = new Int32Array(2);
  scanObject(task.data, task.spans[2 * i]!, task.spans[2 * i + 1]!, [env.keyName], spans);
  if (spans[0]! < 0) return null;
  try {
    return JSON.parse(Buffer.from(task.data.buffer, task.data.byteOffset, task.data.length).toString('utf8', spans[0]!, spans[1]!));
  } catch {
    return null;
  }
}

/** Run an exec task through `models` (every model, or each message's route); resolves with its Outcomes. */
export async function runExec(task: ExecTask, models: string[], env: ExecEnv): Promise<Outcomes> {
  const routes = task.routes;
  if (routes === null && models.length === 0) {
    const table = new OutcomeTable([], 1, task.count);
    const error = new RoutingError('no model is loaded in this partition', { partition: env.partition }).toRecord();
    for (let i = 0; i < task.count; i++) table.error(i, error);
    return table.finish();
  }
  const width = routes === null ? models.length : 1;
  const table = new OutcomeTable(routes === null ? models : [], width, task.count);
  // Routed: each model's messages, in order, found in one pass; a route to no loaded model fails here.
  const routed = new Map<string, number[]>();
  if (routes !== null) {
    for (const model of models) routed.set(model, []);
    for (let i = 0; i < task.count; i++) {
      const mine = routed.get(routes[i]!);
      if (mine !== undefined) mine.push(i);
      else table.error(i, new RoutingError(`no model named "${routes[i]}" is loaded (loaded: ${models.join(', ') || 'none'})`, { partition: env.partition }).toRecord());
    }
  }
  const work: Promise<void>[] = [];
  models.forEach((model, m) => {
    const slotOf = routes === null ? (i: number) => i * width + m : (i: number) => i;
    const indices = routes === null ? null : routed.get(model)!;
    const count = indices === null ? task.count : indices.length;
    // Requests are submitted in message order (a message over the inline limit ends the batch before
    // it), so a model sees its messages in order, and so does its partition state.
    let inline: number[] = [];
    for (let k = 0; k < count; k++) {
      const i = indices === null ? k : indices[k]!;
      if (task.spans[2 * i + 1]! - task.spans[2 * i]! > env.inlineLimit) {
        if (inline.length > 0) work.push(batchRun(task, model, inline, slotOf, table, env));
        inline = [];
        work.push(fileRun(task, model, i, slotOf(i), table, env));
      } else {
        inline.push(i);
      }
    }
    if (inline.length > 0) work.push(batchRun(task, model, inline, slotOf, table, env));
  });
  await Promise.all(work);
  return table.finish();
}

/** Messages `items` through one model as executeBatch requests; resolves once every one has an outcome. */
function batchRun(task: ExecTask, model: string, items: number[], slotOf: (i: number) => number, table: OutcomeTable, env: ExecEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    let remaining = items.length;
    const settled = (n: number) => {
      remaining -= n;
      if (remaining === 0) resolve();
    };
    const make = (part: number[]): Operation => ({
      crashes: 0,
      messages: part.length,
      frame: (id, checksum) => batchFrame(id, model, task.now, task.data, task.spans, part, env.maxFrameBytes, checksum),
      settle: (payload) => {
        const mapped = mapBatchReply(payload, model, part, slotOf, table, env);
        if (mapped === undefined) {
          settled(part.length);
          return undefined;
        }
        return mapped.then(() => settled(part.length));
      },
      giveUp: (err) => {
        const record = err.toRecord();
        for (const i of part) table.error(slotOf(i), record);
        settled(part.length);
      },
      context: (k) => ({ model, key: keyOf(task, part[k] ?? part[0]!, env) }),
      split: part.length > 1 ? (done) => {
        // The first `done` finished before the break (their replies were lost): they go again as one batch.
        // Any of the rest may be the culprit: each goes alone, as a suspect.
        const singles = part.slice(done).map((i) => ({ ...make([i]), suspect: true }));
        return done > 0 ? [make(part.slice(0, done)), ...singles] : singles;
      } : undefined,
    });
    env.submit(make(items));
  });
}

/**
 * Map one executeBatch reply into the table; synchronous unless it names output files (then the
 * promise settles once they are read). Its state changes are applied only once all of that worked.
 */
function mapBatchReply(payload: Buffer, model: string, items: number[], slotOf: (i: number) => number, table: OutcomeTable, env: ExecEnv): Promise<void> | undefined {
  const head = readReplyHead(payload);
  if (head.code < 0) {
    const error = (JSON.parse(payload.toString('utf8')) as { Error?: ReplyError }).Error;
    const record = replyError(head.code, error, env.partition, model, 'executeBatch').toRecord();
    for (const i of items) table.error(slotOf(i), record);
    return undefined;
  }
  const reply = readLeanBatchReply(payload, items.length);
  const changes = reply.stateStart >= 0 ? env.readState(model, payload, reply.stateStart, reply.stateEnd) : null;
  // Every file is claimed now, before the first await: a sweep after a crash must not take one from under us.
  const texts = reply.files.map(([, path]) => env.spool.takeOutput(path));
  for (const text of texts) text.catch(() => { /* awaited below; a failure is reported there */ });
  const base = table.addPiece(payload);
  for (let k = 0; k < items.length; k++) mapOutput(table, slotOf(items[k]!), payload, base, reply.spans[2 * k]!, reply.spans[2 * k + 1]!);
  for (const [k, code, error] of reply.errors) table.error(slotOf(items[k]!), itemError(code, error, env.partition, model));
  if (texts.length === 0) {
    if (changes !== null) table.stateChanges(env.applyState(changes));
    return undefined;
  }
  return (async () => {
    for (let f = 0; f < texts.length; f++) {
      const text = await texts[f]!;
      const at = table.addPiece(text);
      table.output(slotOf(items[reply.files[f]![0]]!), at, at + text.length);
    }
    if (changes !== null) table.stateChanges(env.applyState(changes));
  })();
}

/** One message over the inline limit through a spool file (executeModel with InputFile). */
async function fileRun(task: ExecTask, model: string, i: number, slot: number, table: OutcomeTable, env: ExecEnv): Promise<void> {
  let path: string;
  try {
    path = env.spool.writeInput(task.data.subarray(task.spans[2 * i]!, task.spans[2 * i + 1]!), model);
  } catch (err) {
    // This message alone fails (its neighbours and its batch go on), with its model named.
    table.error(slot, (err as PystageError).toRecord());
    return;
  }
  try {
    await new Promise<void>((resolve) => env.submit({
      crashes: 0,
      messages: 1,
      frame: (id, checksum) => encodeFrame(commandRequest('executeModel', id, { ModelName: model, InputFile: path, Now: task.now }), env.maxFrameBytes, checksum),
      settle: (reply) => {
        const mapped = mapModelReply(reply, model, slot, table, env);
        if (mapped === undefined) return resolve();
        return mapped.then(resolve);
      },
      giveUp: (err) => {
        table.error(slot, err.toRecord());
        resolve();
      },
      context: () => ({ model, key: keyOf(task, i, env) }),
    }));
  } finally {
    await env.spool.remove(path);
  }
}

/** Map one executeModel reply into the table: synchronous unless its output is in a file; state last, as above. */
function mapModelReply(reply: Buffer, model: string, slot: number, table: OutcomeTable, env: ExecEnv): Promise<void> | undefined {
  const spans = new Int32Array(8);
  if (scanObject(reply, 0, reply.length, RESULT_ERROR_FILE, spans) !== Scan.OBJECT) throw new Error('executeModel reply is not a JSON object');
  const head = readReplyHead(reply);
  const changes = spans[6]! >= 0 ? env.readState(model, reply, spans[6]!, spans[7]!) : null;
  if (head.code < 0) {
    const error = JSON.parse(reply.subarray(spans[2], spans[3]).toString('utf8')) as ReplyError;
    table.error(slot, itemError(head.code, error, env.partition, model));
  } else if (spans[4]! >= 0) {
    const taken = env.spool.takeOutput(JSON.parse(reply.subarray(spans[4], spans[5]).toString('utf8')) as string);
    return taken.then((text) => {
      const at = table.addPiece(text);
      table.output(slot, at, at + text.length);
      if (changes !== null) table.stateChanges(env.applyState(changes));
    });
  } else {
    mapOutput(table, slot, reply, table.addPiece(reply), spans[0]!, spans[1]!);
  }
  if (changes !== null) table.stateChanges(env.applyState(changes));
  return undefined;
}
