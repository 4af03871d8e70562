// `npm run example:cluster`: two copies of the example server (examples/server.ts) on two ports,
// sharing Redis (REDIS_URL) and PostgreSQL (DATABASE_URL), behind a small round-robin load
// balancer. A client then talks to the balancer as to one server, and each answer says which copy
// gave it. Everything it made (keys, table, processes) is removed at the end.

import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'pg';
import { createClient } from 'redis';
import { generateClientSecret, hashSecret } from 'express-client-credentials';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const LB_PORT = Number(process.env.LB_PORT || 4100);
const INSTANCES = [
  { name: 'a', port: Number(process.env.PORT_A || 4101) },
  { name: 'b', port: Number(process.env.PORT_B || 4102) },
];
const base = `http://127.0.0.1:${LB_PORT}`;
// One run's own keys and table, so that runs never see each other's clients or counters.
const run = randomBytes(4).toString('hex');
const prefix = `ecc-cluster-${run}:`;
const table = `oauth_clients_cluster_${run}`;

/** Starts one copy of the example server; resolves once it listens. */
function start(name: string, env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [require.resolve('tsx/cli'), join(__dirname, '..', 'server.ts')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        console.log(`[${name}] ${line}`);
        if (line.includes('example on http')) resolve(child);
      }
    });
    child.on('exit', (code) => reject(new Error(`instance ${name} exited with ${code}`)));
  });
}

/** Round-robin over the copies, as any load balancer would; says who answered in X-Served-By. */
function loadBalancer(): Promise<http.Server> {
  let next = 0;
  const server = http.createServer((req, res) => {
    const instance = INSTANCES[next++ % INSTANCES.length]!;
    const upstream = http.request({ host: '127.0.0.1', port: instance.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, { ...answer.headers, 'x-served-by': instance.name });
      answer.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  return new Promise((resolve) => server.listen(LB_PORT, '127.0.0.1', () => resolve(server)));
}

async function call(path: string, init: { method?: string; auth?: string; form?: Record<string, string> } = {}) {
  const res = await fetch(`${base}${path}`, {
    method: init.method ?? (init.form ? 'POST' : 'GET'),
    headers: {
      ...(init.auth ? { Authorization: init.auth } : {}),
      ...(init.form ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {}),
    },
    body: init.form ? new URLSearchParams(init.form).toString() : null,
  });
  const text = await res.text();
  return { status: res.status, servedBy: res.headers.get('x-served-by'), body: text === '' ? undefined : (JSON.parse(text) as Record<string, string>) };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ecc-cluster-'));
  const secret = generateClientSecret();
  const clientsFile = join(dir, 'clients.json');
  writeFileSync(clientsFile, JSON.stringify([{ client_id: 'cluster-demo', client_secret_hash: await hashSecret(secret), scope: 'read' }]));
  const keyFile = join(dir, 'signing-key.pem');
  writeFileSync(keyFile, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  // The same settings for both: one issuer (the balancer's address), one key, one Redis, one table.
  const shared = {
    OAUTH_ISSUER: base,
    OAUTH_SIGNING_KEY_FILE: keyFile,
    OAUTH_CLIENTS_FILE: clientsFile,
    DATABASE_URL,
    OAUTH_CLIENTS_TABLE: table,
    REDIS_URL,
    OAUTH_REDIS_PREFIX: prefix,
  };
  const children: ChildProcess[] = [];
  let balancer: http.Server | undefined;
  try {
    // Started together: both create the table and import the file, and neither trips on the other.
    children.push(...(await Promise.all(INSTANCES.map(({ name, port }) => start(name, { ...shared, PORT: String(port) })))));
    balancer = await loadBalancer();
    console.log(`load balancer on ${base}, round-robin over ${INSTANCES.map(({ name, port }) => `${name} (:${port})`).join(' and ')}`);

    const basic = (password: string) => `Basic ${Buffer.from(`cluster-demo:${password}`).toString('base64')}`;
    const issued = await call('/token', { auth: basic(secret), form: { grant_type: 'client_credentials' } });
    console.log(`POST /token by ${issued.servedBy}: ${issued.status}`);
    const bearer = `Bearer ${issued.body?.access_token}`;
    const read = await call('/api/data', { auth: bearer });
    console.log(`GET /api/data by ${read.servedBy}: ${read.status} ${JSON.stringify(read.body)}`);
    const revoked = await call('/revoke', { auth: basic(secret), form: { token: issued.body?.access_token ?? '' } });
    console.log(`POST /revoke by ${revoked.servedBy}: ${revoked.status}`);
    for (let i = 0; i < INSTANCES.length; i += 1) {
      const refused = await call('/api/data', { auth: bearer });
      console.log(`GET /api/data by ${refused.servedBy}: ${refused.status} (${refused.status === 401 ? 'revoked everywhere' : 'NOT revoked here'})`);
    }
    const failures: string[] = [];
    for (let i = 0; i < 10; i += 1) {
      const failed = await call('/token', { auth: basic('wrong'), form: { grant_type: 'client_credentials' } });
      failures.push(`${failed.status} by ${failed.servedBy}`);
    }
    console.log(`10 wrong secrets: ${failures.join(', ')}`);
    for (let i = 0; i < INSTANCES.length; i += 1) {
      const locked = await call('/token', { auth: basic(secret), form: { grant_type: 'client_credentials' } });
      console.log(`the right secret by ${locked.servedBy}: ${locked.status} (${locked.status === 429 ? 'locked on every instance: the limit counts across them' : 'NOT locked here'})`);
    }
  } finally {
    balancer?.close();
    for (const child of children) child.kill();
    await cleanUp();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Drops this run's table and Redis keys. */
async function cleanUp(): Promise<void> {
  const pool = new Pool({ connectionString: DATABASE_URL, connectionTimeoutMillis: 5000 });
  await pool.query(`drop table if exists "public"."${table}"`).finally(() => pool.end());
  const redis = createClient({ url: REDIS_URL });
  redis.on('error', () => undefined);
  await redis.connect();
  for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) if (keys.length > 0) await redis.del(keys);
  redis.destroy();
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
