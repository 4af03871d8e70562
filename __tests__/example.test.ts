import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { createExampleServer } from '../examples/server.js';
import { aClient, decodeHeader, decodePayload } from './support/fixtures.js';

const ROOT = join(__dirname, '..');
const CC = { grant_type: 'client_credentials' };
const ENV_NAMES = ['PORT', 'HOST', 'OAUTH_ISSUER', 'OAUTH_AUDIENCE', 'OAUTH_CLIENTS_FILE', 'OAUTH_SIGNING_KEY_FILE', 'OAUTH_TOKEN_SECRET'];

/** Runs `body` with exactly these example variables set, as a shell would. */
async function withEnv<T>(vars: Record<string, string>, body: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(ENV_NAMES.map((name) => [name, process.env[name]]));
  for (const name of ENV_NAMES) delete process.env[name];
  Object.assign(process.env, vars);
  try {
    return await body();
  } finally {
    for (const name of ENV_NAMES) delete process.env[name];
    for (const [name, value] of Object.entries(saved)) if (value !== undefined) process.env[name] = value;
  }
}

describe('the example server', () => {
  it('creates and prints a demo client without OAUTH_CLIENTS_FILE, and guards GET and POST /api/data by scope', async () => {
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const { app, demoClient } = await withEnv({}, createExampleServer).finally(() => emitWarning.mockRestore());
    expect(demoClient?.id).toBe('demo');
    const { body } = await request(app).post('/token').auth('demo', demoClient?.secret ?? '').type('form').send(CC).expect(200);
    expect(decodePayload(body.access_token)).toMatchObject({ iss: 'http://127.0.0.1:3000', aud: 'http://127.0.0.1:3000/api', scope: 'read' });
    const bearer = `Bearer ${body.access_token}`;
    await request(app).get('/api/data').set('Authorization', bearer).expect(200, { client_id: 'demo', scope: 'read' });
    expect((await request(app).post('/api/data').set('Authorization', bearer)).status).toBe(403);
    const write = await request(app).post('/token').auth('demo', demoClient?.secret ?? '').type('form').send({ ...CC, scope: 'write' });
    await request(app).post('/api/data').set('Authorization', `Bearer ${write.body.access_token}`).expect(200, { client_id: 'demo', scope: 'write' });
  });

  it('reads clients, key, issuer and audience from the environment', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ecc-example-'));
    const client = await aClient({ scope: 'read' });
    writeFileSync(join(dir, 'clients.json'), JSON.stringify([client.record]));
    const pem = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    writeFileSync(join(dir, 'key.pem'), pem);
    const env = {
      OAUTH_ISSUER: 'https://auth.example.test',
      OAUTH_AUDIENCE: 'https://api.example.test',
      OAUTH_CLIENTS_FILE: join(dir, 'clients.json'),
      OAUTH_SIGNING_KEY_FILE: join(dir, 'key.pem'),
    };
    const { app, demoClient } = await withEnv(env, createExampleServer);
    expect(demoClient).toBeUndefined();
    const { body } = await request(app).post('/token').auth(client.id, client.secret).type('form').send(CC).expect(200);
    expect(decodeHeader(body.access_token).alg).toBe('EdDSA');
    expect(decodePayload(body.access_token)).toMatchObject({ iss: env.OAUTH_ISSUER, aud: env.OAUTH_AUDIENCE });
    await request(app).get('/api/data').set('Authorization', `Bearer ${body.access_token}`).expect(200);
    const metadata = await request(app).get('/.well-known/oauth-authorization-server');
    expect(metadata.body).toMatchObject({ issuer: env.OAUTH_ISSUER, token_endpoint: `${env.OAUTH_ISSUER}/token` });
    expect((await request(app).get('/.well-known/jwks.json')).body.keys).toHaveLength(1);
  });

  it('signs with HS256 from OAUTH_TOKEN_SECRET', async () => {
    const emitWarning = jest.spyOn(process, 'emitWarning');
    const { app, demoClient } = await withEnv({ OAUTH_TOKEN_SECRET: 'x'.repeat(32) }, createExampleServer).finally(() => emitWarning.mockRestore());
    expect(emitWarning).not.toHaveBeenCalled();
    const { body } = await request(app).post('/token').auth('demo', demoClient?.secret ?? '').type('form').send(CC).expect(200);
    expect(decodeHeader(body.access_token).alg).toBe('HS256');
  });

  it('starts with npm start and serves the curl session of the README', async () => {
    const port = await freePort();
    const child = spawn('npm', ['start', '--silent'], { cwd: ROOT, env: { ...process.env, PORT: String(port), HOST: '127.0.0.1' }, detached: true });
    try {
      const output = await new Promise<string>((resolve, reject) => {
        let text = '';
        const timer = setTimeout(() => reject(new Error(`npm start printed: ${text}`)), 15_000);
        child.stdout.on('data', (chunk: Buffer) => {
          text += chunk.toString();
          if (text.includes('client_secret=')) {
            clearTimeout(timer);
            resolve(text);
          }
        });
        child.on('exit', () => reject(new Error(`npm start exited: ${text}`)));
      });
      expect(output).toContain(`express-client-credentials example on http://127.0.0.1:${port}`);
      const secret = /client_secret=(\S+)/.exec(output)?.[1] ?? '';
      const base = `http://127.0.0.1:${port}`;
      const token = await fetch(`${base}/token`, {
        method: 'POST',
        headers: { Authorization: `Basic ${Buffer.from(`demo:${secret}`).toString('base64')}`, 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
      }).then((res) => res.json() as Promise<{ access_token: string }>);
      const data = await fetch(`${base}/api/data`, { headers: { Authorization: `Bearer ${token.access_token}` } });
      expect([data.status, await data.json()]).toEqual([200, { client_id: 'demo', scope: 'read' }]);
    } finally {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
    }
  });
});

describe('the split example: authorization server, resource server and calling service', () => {
  it('runs the trio with npm run example:split: three calls answered with one client id', async () => {
    const [asPort, apiPort] = [await freePort(), await freePort()];
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn('npm', ['run', 'example:split', '--silent'], { cwd: ROOT, env: { ...process.env, AS_PORT: String(asPort), API_PORT: String(apiPort) } });
      let text = '';
      child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
      const timer = setTimeout(() => (child.kill(), reject(new Error(`timed out: ${text}`))), 30_000);
      child.on('exit', (code) => (clearTimeout(timer), code === 0 ? resolve(text) : reject(new Error(`exit ${code}: ${text}`))));
    });
    expect(output).toContain(`[authorization-server] authorization server on http://127.0.0.1:${asPort}`);
    expect(output).toContain(`[resource-server] resource server on http://127.0.0.1:${apiPort}`);
    const calls = output.split('\n').filter((line) => line.startsWith('[calling-service] '));
    expect(calls.map((line) => JSON.parse(line.slice('[calling-service] '.length)))).toEqual(
      [1, 2, 3].map((call) => ({ call, status: 200, body: { reports: ['q1', 'q2'], client_id: 'reports-caller' } })),
    );
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
