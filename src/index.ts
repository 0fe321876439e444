/** pystage: run Python models over a partitioned message stream. */
export { createStage, Stage } from './api/stage.js';
export type { StageOutput, StageFailure, StageRecord, StageStats, PartitionLoad } from './api/stage.js';
export type { StageOptions } from './api/options.js';
export type { ModelSpec, PartitionStatus } from './engine/worker-protocol.js';
export * from './api/errors.js';
export { fnv1a, Partitioner } from './engine/partitioner.js';
export { shardOf } from './redis/shard-keys.js';
export { sampleModel } from './api/sample-models.js';
export type { HostHandler, HostRequestContext } from './context/host-services.js';
export { SharedCache, CacheValueTooLargeError, type CacheStats } from './context/shared-cache.js';
export { loadHandlers } from './cli/handlers-file.js';
// Redis Streams through consumer groups (README "Redis Streams").
export { redisSource, RedisSource, type RedisMessage, type RedisSourceStats } from './redis/redis-source.js';
export type { RedisSourceOptions } from './redis/redis-options.js';
export { redisSink, RedisSink } from './redis/redis-sink.js';
export { runRedisStage, type RedisRunTargets, type RedisRunStats } from './redis/redis-run.js';
export { LineTarget } from './redis/record-target.js';
export { RedisStreamError } from './redis/redis-error.js';
export { parseStreamUrl, type StreamUrl } from './redis/redis-url.js';
