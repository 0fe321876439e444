/** The error of the Redis Streams source and sink. */
import { PystageError } from '../api/errors.js';

/** Redis refused a command the stage cannot do without (wrong key type, no permission, …), or the client was closed. */
export class RedisStreamError extends PystageError {
  override readonly code = 'PYSTAGE_REDIS';
}
