/**
 * `--handlers FILE`: an ES module whose named exports are the host's handlers, each
 * `(payload, context) => value | Promise<value>`, reached from Python by
 * `self.context.request(name, payload)`.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InvalidOptionError } from '../api/errors.js';
import type { HostHandler } from '../context/host-services.js';

/** The handlers a module file exports (named exports; a default export is not a handler). */
export async function loadHandlers(file: string): Promise<Record<string, HostHandler>> {
  const path = resolve(file);
  if (!existsSync(path)) throw new InvalidOptionError(`--handlers ${file}: no such file`);
  let module: Record<string, unknown>;
  try {
    module = await import(pathToFileURL(path).href) as Record<string, unknown>;
  } catch (err) {
    throw new InvalidOptionError(`--handlers ${file}: the module could not be loaded: ${(err as Error).message}`);
  }
  const handlers: Record<string, HostHandler> = {};
  for (const [name, value] of Object.entries(module)) {
    if (name === 'default') continue;
    if (typeof value !== 'function') {
      throw new InvalidOptionError(`--handlers ${file}: export "${name}" is not a function; every named export must be a handler (payload, context) => value`);
    }
    handlers[name] = value as HostHandler;
  }
  return handlers;
}
