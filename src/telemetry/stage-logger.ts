/** The logger type the public API shows (pino's logger fits it), so no dependency's types leak into pystage's. */
type LogMethod = (fields: object, message?: string) => void;

/** A JSON-lines logger: fields, then a message. */
export interface StageLogger {
  trace: LogMethod;
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
  fatal: LogMethod;
}
