// express-client-credentials/redis: state that several instances of an app share through Redis
// (revocations, RFC 7009; used assertion ids, RFC 7523 §3; rate limits, RFC 6749 §2.3.1).

export { RedisRevocationStore } from './stores/redis-revocation-store.js';
export { RedisReplayCache } from './stores/redis-replay-cache.js';
export { redisRateLimitStores, type RedisRateLimitStores } from './stores/redis-rate-limit.js';
export { type RedisCommandSender, type RedisStoreOptions } from './stores/redis-commands.js';
