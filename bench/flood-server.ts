// The server `npm run flood` attacks, in its own process so that its memory is its own: the
// library with its defaults (bcrypt cost 10, the default comparison queue and limits), a guarded
// route, and with REDIS_URL the Redis stores. Started by flood.ts, which it tells its port over IPC.

import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import express from 'express';
import { createClient } from 'redis';
import { authenticate, hashSecret, issuer, requireScope, type IssuerOptions } from '../lib/index.js';
import { RedisReplayCache, RedisRevocationStore, redisRateLimitStores } from '../lib/redis.js';

export interface FloodClient {
  readonly id: string;
  readonly secret: string;
}

export interface FloodServerStats {
  readonly rss: number;
  /** Microseconds of CPU the process used (all threads, bcrypt workers included), and of the event loop's delay p99. */
  readonly cpu: number;
  readonly mainThread: number;
  readonly loopDelayP99: number;
  readonly queued: number;
  readonly peakQueued: number;
  /** Answers by status since start. */
  readonly statuses: Readonly<Record<string, number>>;
}

async function main(): Promise<void> {
  const clients: FloodClient[] = JSON.parse(process.env.FLOOD_CLIENTS ?? '[]');
  const issuerUrl = 'http://127.0.0.1';
  const options: IssuerOptions = {
    issuer: issuerUrl,
    signingKey: { privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey },
    clients: await Promise.all(clients.map(async (c) => ({ client_id: c.id, client_secret_hash: await hashSecret(c.secret), scope: 'read' }))),
    storeTimeout: Number(process.env.FLOOD_STORE_TIMEOUT ?? 2000),
    onInternalError: (line) => console.error(line),
  };
  let closeRedis = async (): Promise<void> => undefined;
  if (process.env.REDIS_URL) {
    const redis = createClient({ url: process.env.REDIS_URL, disableOfflineQueue: true, socket: { reconnectStrategy: () => 200 } });
    redis.on('error', () => undefined);
    await redis.connect();
    closeRedis = async () => redis.destroy();
    const limits = redisRateLimitStores(redis, { commandTimeout: 1000 });
    options.revocations = new RedisRevocationStore(redis, { commandTimeout: 1000 });
    options.replayCache = new RedisReplayCache(redis, { commandTimeout: 1000 });
    options.rateLimit = { failedAuthentication: { store: limits.failedAuthentication }, perAddress: { store: limits.perAddress } };
  }
  const tokens = issuer(options);
  const statuses: Record<string, number> = {};
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const app = express();
  app.disable('x-powered-by');
  app.use((_req, res, next) => {
    res.on('finish', () => {
      statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
      if (process.env.FLOOD_DEBUG && res.statusCode >= 500 && !/^127\.0\.0\.(\d|[1-9]\d|1\d\d|2[0-4]\d|25[01])$/.test(_req.ip ?? '')) console.error(`DEBUG ${_req.ip} ${res.statusCode}`);
    });
    next();
  });
  app.get('/__flood/stats', (_req, res) => {
    const cpu = process.cpuUsage();
    // The event loop's thread alone (Linux): utime + stime of the main thread, in clock ticks of 10 ms.
    const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    const mainThread = (Number(fields[11]) + Number(fields[12])) * 10_000;
    const stats: FloodServerStats = { rss: process.memoryUsage().rss, cpu: cpu.user + cpu.system, mainThread, loopDelayP99: loop.percentile(99) / 1e6, queued: tokens.comparisons.queued, peakQueued: tokens.comparisons.peakQueued, statuses };
    res.json(stats);
  });
  app.use('/token', tokens);
  app.use('/revoke', tokens.revocation);
  app.use('/api', authenticate({ issuer: tokens }));
  app.get('/api/data', requireScope('read'), (req, res) => {
    res.json({ client_id: req.auth?.clientId });
  });
  const server = app.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port }));
  // Many addresses, keep-alive: let the server hold what the load generator opens.
  server.keepAliveTimeout = 30_000;
  process.on('disconnect', () => {
    server.close();
    server.closeAllConnections();
    void tokens.close().then(closeRedis).then(() => process.exit(0));
  });
}

void main();
