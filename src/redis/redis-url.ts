/**
 * `redis://[USER:PASSWORD@]HOST:PORT[/DB]/STREAM`: where a stream lives. Parsed once, with a
 * message that says what is wrong; the stream name is URL-decoded (a name with a `/` is written `%2F`).
 */
import { InvalidOptionError } from '../api/errors.js';

/** A stream on a Redis server. */
export interface StreamUrl {
  host: string;
  port: number;
  db: number;
  stream: string;
  username?: string;
  password?: string;
  /** Identifies the server and database: destinations with the same one share a connection and a transaction. */
  server: string;
}

/** True when `text` looks like a stream URL rather than a file name. */
export function isStreamUrl(text: string): boolean {
  return /^rediss?:\/\//i.test(text);
}

/** Parse a stream URL; throws InvalidOptionError naming the flag and what to write instead. */
export function parseStreamUrl(text: string, what = 'a stream URL'): StreamUrl {
  const shape = `expected redis://HOST:PORT[/DB]/STREAM`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidOptionError(`${what} "${text}" is not a URL; ${shape}`);
  }
  if (url.protocol !== 'redis:') throw new InvalidOptionError(`${what} "${text}" must start with redis:// (TLS and other schemes are not supported); ${shape}`);
  if (url.search !== '' || url.hash !== '') throw new InvalidOptionError(`${what} "${text}" has a query or fragment; ${shape}`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new InvalidOptionError(`${what} "${text}" has no host; ${shape}`);
  const port = url.port === '' ? 6379 : Number(url.port);
  const parts = url.pathname.split('/').slice(1);
  let db = 0;
  if (parts.length === 2 && /^\d+$/.test(parts[0]!)) {
    db = Number(parts.shift());
    if (db > 65535) throw new InvalidOptionError(`${what} "${text}": database ${db} is out of range`);
  }
  if (parts.length !== 1 || parts[0] === '') {
    throw new InvalidOptionError(`${what} "${text}" must name exactly one stream after the host (and optional database number); ${shape}`);
  }
  const stream = decodeURIComponent(parts[0]!);
  const username = url.username === '' ? undefined : decodeURIComponent(url.username);
  const password = url.password === '' ? undefined : decodeURIComponent(url.password);
  return { host, port, db, stream, username, password, server: `${host}:${port}/${db}` };
}
