/** A cheap correctness check on top of the output counts: the first output line holds the right sum. */
import { messageAt } from './input-file.js';
import { firstLine } from './line-count.js';

/** Where an output line says its sum is, and for which input offset. */
export type OutputReader = (line: string) => { offset: number; sum: unknown };

/** A CLI output line: {"offset":N,...,"output":{"sum":S}}. */
export const cliOutput: OutputReader = (line) => {
  const o = JSON.parse(line) as { offset: number; output: { sum: unknown } };
  return { offset: o.offset, sum: o.output.sum };
};

/** A baseline output line: {"sum": S}, in input order, so the first is message 0. */
export const plainOutput: OutputReader = (line) => ({ offset: 0, sum: (JSON.parse(line) as { sum: unknown }).sum });

/** Throw unless the file's first line is the add model's output for its input message. */
export function checkFirstOutput(runner: string, path: string, read: OutputReader): void {
  const line = firstLine(path);
  let parsed;
  try {
    parsed = read(line);
  } catch (err) {
    throw new Error(`${runner}: first output line is not what the add model writes: ${line.slice(0, 200)} (${(err as Error).message})`);
  }
  const message = messageAt(parsed.offset);
  if (parsed.sum !== message.a + message.b) {
    throw new Error(`${runner}: output for offset ${parsed.offset} has sum ${String(parsed.sum)}, expected ${message.a + message.b}`);
  }
}
