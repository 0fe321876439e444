/** The stage's pino logger: JSON lines on stderr, shared by the main thread and the workers. */
import { pino, type Logger } from 'pino';

export type { Logger };

/** A logger writing synchronously to fd 2, so lines from worker threads and forwarded Python logs interleave whole. */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings } }, pino.destination({ fd: 2, sync: true }));
}
