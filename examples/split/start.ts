// `npm run example:split`: starts the authorization server and the resource server as separate
// processes, then runs the calling service against them, and stops everything.

import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateClientSecret, hashSecret } from 'express-client-credentials';

const AS_PORT = Number(process.env.AS_PORT || 4000);
const API_PORT = Number(process.env.API_PORT || 4001);
const issuer = `http://127.0.0.1:${AS_PORT}`;
const api = `http://127.0.0.1:${API_PORT}`;

function start(file: string, env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [require.resolve('tsx/cli'), join(__dirname, file)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) console.log(`[${file.replace('.ts', '')}] ${line}`);
      resolve(child); // each server prints one line once it listens
    });
    child.on('exit', (code) => reject(new Error(`${file} exited with ${code}`)));
  });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ecc-split-'));
  const secret = generateClientSecret();
  const clientsFile = join(dir, 'clients.json');
  writeFileSync(clientsFile, JSON.stringify([{ client_id: 'reports-caller', client_secret_hash: await hashSecret(secret), scope: 'read' }]));
  const keyFile = join(dir, 'signing-key.pem');
  writeFileSync(keyFile, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  // The audience is the resource server's identifier: tokens name it, and it checks for itself.
  const shared = { OAUTH_ISSUER: issuer, OAUTH_AUDIENCE: `${api}/api` };
  const children = [
    await start('authorization-server.ts', { ...shared, PORT: String(AS_PORT), OAUTH_CLIENTS_FILE: clientsFile, OAUTH_SIGNING_KEY_FILE: keyFile }),
    await start('resource-server.ts', { ...shared, PORT: String(API_PORT) }),
  ];
  try {
    const caller = await start('calling-service.ts', { ...shared, API_URL: api, OAUTH_CLIENT_ID: 'reports-caller', OAUTH_CLIENT_SECRET: secret });
    await new Promise((resolve) => caller.on('exit', resolve));
  } finally {
    for (const child of children) child.kill();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
