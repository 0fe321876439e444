/** Helpers for tests of stages over Redis Streams: start a stage, wait for a condition, read a stream back. */
import type { ChildProcess } from 'node:child_process';
import type { Redis } from 'ioredis';
import { startCli } from './cli-runner.js';

const live = new Set<ChildProcess>();

/** Start the CLI as `startCli` does, remembered until it exits, so a failing test can stop it (`stopLeftovers`). */
export function startStage(args: string[]): ReturnType<typeof startCli> {
  const started = startCli(args);
  live.add(started.child);
  started.child.on('exit', () => live.delete(started.child));
  return started;
}

/** SIGKILL every stage a test started that is still running (its Python servers follow within 2 s). */
export function stopLeftovers(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

/** Poll `check` until it returns true (a check that throws, e.g. before the group exists, counts as false); fail with `what` after `ms`. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  let last: unknown = null;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One record read back from a sink or errors stream: its `data` as text and parsed. */
export interface StoredRecord {
  entryId: string;
  text: string;
  record: Record<string, any>;
}

/** Every entry of a stream, in stream order, with field `data` parsed. */
export async function readStream(client: Redis, stream: string): Promise<StoredRecord[]> {
  const all: StoredRecord[] = [];
  let from = '-';
  for (;;) {
    const page = await client.xrange(stream, from, '+', 'COUNT', 1000);
    for (const [entryId, fields] of page) {
      const text = fields[fields.indexOf('data') + 1]!;
      all.push({ entryId, text, record: JSON.parse(text) });
    }
    if (page.length < 1000) return all;
    from = '(' + page[page.length - 1]![0];
  }
}

/** Pending entries of a group (all consumers), or of one consumer. */
export async function pendingIds(client: Redis, stream: string, group: string, consumer?: string): Promise<string[]> {
  const args: (string | number)[] = [stream, group, '-', '+', 100_000];
  if (consumer !== undefined) args.push(consumer);
  const rows = (await (client as any).xpending(...args)) as [string, string, number, number][];
  return rows.map((r) => r[0]);
}

/** How many records name each source entry id. */
export function countById(records: StoredRecord[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of records) counts.set(r.record.id, (counts.get(r.record.id) ?? 0) + 1);
  return counts;
}

/** Add messages as entries with field `data` (pipelined); returns their ids in order. */
export async function addMessages(client: Redis, stream: string, messages: string[]): Promise<string[]> {
  const batch = client.pipeline();
  for (const m of messages) batch.xadd(stream, '*', 'data', m);
  const replies = (await batch.exec())!;
  return replies.map(([err, id]) => {
    if (err) throw err;
    return id as string;
  });
}

/** The last ID delivered to a group (XINFO GROUPS), or null before the group exists. */
export async function lastDelivered(client: Redis, stream: string, group: string): Promise<string | null> {
  let groups: unknown[][];
  try {
    groups = (await client.xinfo('GROUPS', stream)) as unknown[][];
  } catch {
    return null;
  }
  for (const g of groups) {
    const info = new Map<string, unknown>();
    for (let i = 0; i + 1 < g.length; i += 2) info.set(String(g[i]), g[i + 1]);
    if (info.get('name') === group) return String(info.get('last-delivered-id'));
  }
  return null;
}
