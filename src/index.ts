/** pystage: run Python models over a partitioned message stream. */
export { createStage, Stage } from './api/stage.js';
export type { StageOutput, StageFailure, StageRecord, StageStats, PartitionLoad } from './api/stage.js';
export type { StageOptions } from './api/options.js';
export type { ModelSpec, PartitionStatus } from './engine/worker-protocol.js';
// The errors a user can meet (thrown, or as a record's `error.code`) and rebuild from a record; the
// internal ones (a broken connection, a refused host request, the CLI's usage error) stay inside.
export {
  PystageError, InvalidOptionError, PythonStartError, ModelLoadError, ModelExecutionError, BadRequestError, PoisonMessageError,
  BadInputError, RoutingError, PartitionFailedError, StageClosedError, PartitionsError, CacheValueTooLargeError,
  RedisStreamError, UnusableReplyError, SpoolWriteError, StateStoreError, ResumeRefusedError, LeaseLostError, ERROR_CODES, errorFromRecord, type ErrorRecord,
} from './api/errors.js';
export { fnv1a, Partitioner } from './engine/partitioner.js';
export { shardOf } from './redis/shard-keys.js';
export { sampleModel } from './api/sample-models.js';
export type { HostHandler, HostRequestContext } from './context/host-services.js';
export { SharedCache, type CacheStats } from './context/shared-cache.js';
export { loadHandlers } from './cli/handlers-file.js';
// Redis Streams through consumer groups (README "Redis Streams").
export { redisSource, RedisSource, type RedisMessage, type RedisSourceStats } from './redis/redis-source.js';
export type { RedisSourceOptions } from './redis/redis-options.js';
export { redisSink, RedisSink } from './redis/redis-sink.js';
export { runRedisStage, type RedisRunTargets, type RedisRunStats } from './redis/redis-run.js';
export { LineTarget } from './redis/record-target.js';
export { parseStreamUrl, type StreamUrl } from './redis/redis-url.js';
