/** Runs the built CLI as a child process, feeding stdin and collecting stdout, stderr and the exit code. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const cliPath = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const modelsDir = fileURLToPath(new URL('../../../py/models/', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Where and with what environment the CLI runs (default: the repository root, this process's environment). */
export interface CliSpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** Start the CLI; `input` (if given) is written to stdin and stdin closed. */
export function startCli(args: string[], input?: string | Buffer, options: CliSpawnOptions = {}): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'], cwd: options.cwd ?? repoRoot, env: options.env ?? process.env });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => err.push(c));
  child.stdin!.on('error', () => {});
  if (input !== undefined) child.stdin!.end(input);
  const done = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) => resolve({
      code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'),
    }));
  });
  return { child, done };
}

/** Run the CLI to completion. */
export function runCli(args: string[], input: string | Buffer = '', options: CliSpawnOptions = {}): Promise<CliResult> {
  return startCli(args, input, options).done;
}

/** Parse JSON lines, ignoring blanks. */
export function jsonLines(text: string): Record<string, any>[] {
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
}

/** The summary line the CLI writes to stderr at exit. */
export function summaryOf(stderr: string): Record<string, any> {
  const line = stderr.split('\n').reverse().find((l) => l.startsWith('{"summary"'));
  if (!line) throw new Error(`no summary line in stderr:\n${stderr.slice(-2000)}`);
  return JSON.parse(line).summary;
}
