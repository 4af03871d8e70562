// The soak test (`npm run soak`; CI runs it briefly through __tests__/soak.test.ts): token requests
// and guarded requests from concurrent loops for a fixed time against one app on loopback.
// Fails on any 5xx, any wrong answer, or heap growth between two checkpoints after warm-up.
// SOAK_SECONDS (default 60), SOAK_CONCURRENCY (default 16), SOAK_MAX_HEAP_GROWTH_MB (default 32).

import { generateKeyPairSync } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { hashSecret, issuer, requireScope } from '../../lib/index.js';

const seconds = Number(process.env.SOAK_SECONDS ?? 60);
const concurrency = Number(process.env.SOAK_CONCURRENCY ?? 16);
const maxGrowthMb = Number(process.env.SOAK_MAX_HEAP_GROWTH_MB ?? 32);
const gc = (globalThis as { gc?: () => void }).gc;

interface Tally {
  requests: number;
  serverErrors: number;
  wrong: string[];
}

async function main(): Promise<void> {
  if (gc === undefined) throw new Error('run with node --expose-gc, so that heap checkpoints mean something');
  const clients = await Promise.all(
    Array.from({ length: 20 }, async (_, i) => ({ id: `soak-${i}`, secret: `secret-${i}-${Math.random()}`, scope: i % 2 === 0 ? 'read write' : 'read' })),
  );
  const records = await Promise.all(clients.map(async (c) => ({ client_id: c.id, client_secret_hash: await hashSecret(c.secret, 4), scope: c.scope })));
  const app = express();
  const tokens = issuer({
    issuer: 'http://127.0.0.1:1',
    signingKey: { privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey },
    clients: records,
    secretHashCost: 4,
    // One address sends everything here; the per-address cap is for real traffic, and unknown ids
    // from one address share one failure-lock counter, so the lock's limit is raised for the
    // occasional wrong guess to stay a 401 (the lock is tested in express/availability.test.ts).
    rateLimit: { perAddress: false, failedAuthentication: { limit: 1_000_000 } },
  });
  app.use('/token', tokens);
  app.use('/revoke', tokens.revocation);
  app.get('/api/read', requireScope('read'), (req, res) => { res.json({ client: req.auth?.clientId }); });
  app.post('/api/write', requireScope('write'), (req, res) => { res.json({ client: req.auth?.clientId }); });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const tally: Tally = { requests: 0, serverErrors: 0, wrong: [] };
  const expect = (what: string, status: number, expected: number): void => {
    tally.requests += 1;
    if (status >= 500) tally.serverErrors += 1;
    if (status !== expected && tally.wrong.length < 20) tally.wrong.push(`${what}: ${status}, expected ${expected}`);
  };
  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
  const form = { 'Content-Type': 'application/x-www-form-urlencoded' };

  const deadline = Date.now() + seconds * 1000;
  const warmUpEnd = Date.now() + seconds * 200;
  let checkpoint: number | undefined;

  async function loop(n: number): Promise<void> {
    let i = 0;
    while (Date.now() < deadline) {
      const client = clients[(n + i++) % clients.length]!;
      // An unknown client now and then: 401.
      if (i % 50 === 0) {
        const res = await fetch(`${base}/token`, { method: 'POST', headers: { ...form, Authorization: basic(`${client.id}-unknown-${n}-${i}`, 'nope') }, body: 'grant_type=client_credentials' });
        expect('unknown client', res.status, 401);
        await res.arrayBuffer();
      }
      const issued = await fetch(`${base}/token`, { method: 'POST', headers: { ...form, Authorization: basic(client.id, client.secret) }, body: 'grant_type=client_credentials' });
      expect('token', issued.status, 200);
      const { access_token: token } = (await issued.json()) as { access_token: string };
      for (let call = 0; call < 5; call++) {
        const read = await fetch(`${base}/api/read`, { headers: { Authorization: `Bearer ${token}` } });
        expect('read', read.status, 200);
        await read.arrayBuffer();
      }
      const write = await fetch(`${base}/api/write`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
      expect('write', write.status, client.scope.includes('write') ? 200 : 403);
      await write.arrayBuffer();
      const anonymous = await fetch(`${base}/api/read`);
      expect('no token', anonymous.status, 401);
      await anonymous.arrayBuffer();
      if (i % 10 === 0) {
        const revoked = await fetch(`${base}/revoke`, { method: 'POST', headers: { ...form, Authorization: basic(client.id, client.secret) }, body: `token=${token}` });
        expect('revoke', revoked.status, 200);
        const after = await fetch(`${base}/api/read`, { headers: { Authorization: `Bearer ${token}` } });
        expect('revoked token', after.status, 401);
        await after.arrayBuffer();
      }
      if (checkpoint === undefined && Date.now() >= warmUpEnd) {
        gc!();
        checkpoint = process.memoryUsage().heapUsed;
      }
    }
  }
  const started = Date.now();
  await Promise.all(Array.from({ length: concurrency }, (_, n) => loop(n)));
  gc();
  const end = process.memoryUsage().heapUsed;
  server.close();
  const growthMb = checkpoint === undefined ? 0 : (end - checkpoint) / 1024 / 1024;
  const summary = {
    seconds: Math.round((Date.now() - started) / 100) / 10,
    requests: tally.requests,
    perSecond: Math.round(tally.requests / ((Date.now() - started) / 1000)),
    serverErrors: tally.serverErrors,
    wrongAnswers: tally.wrong,
    heapAfterWarmUpMb: checkpoint === undefined ? undefined : Math.round(checkpoint / 1024 / 1024),
    heapGrowthMb: Math.round(growthMb * 10) / 10,
  };
  console.log(JSON.stringify(summary));
  if (tally.serverErrors > 0 || tally.wrong.length > 0 || growthMb > maxGrowthMb || tally.requests === 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
