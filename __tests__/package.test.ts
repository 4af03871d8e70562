// The built package, as users install it: dist/ from `npm run build` (npm pack and publish run it; npm install does not), through the exports map.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..');
const EXPORTS = [
  'issuer', 'authenticate', 'requireScope', 'requireAnyScope', 'hashSecret', 'generateClientSecret', 'MemoryClientStore',
  'MemoryRevocationStore', 'OAuthError', 'ConfigurationError', 'sendError', 'environmentDefaults', 'tokenClient', 'TokenRequestError',
];
const node = (args: string[]) => execFileSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' }).trim();

describe('the published package', () => {
  beforeAll(() => {
    // npm install does not build (users get no install script): .ci/run runs `npm run build` after `npm ci`.
    if (!existsSync(join(ROOT, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` before these tests (npm install does not build it)');
  });

  it('works from require()', () => {
    const names = node(['-e', `const m = require('express-client-credentials'); console.log(${JSON.stringify(EXPORTS)}.filter((n) => typeof m[n] !== 'function').join(',') || 'ok')`]);
    expect(names).toBe('ok');
  });

  it('works from import', () => {
    const script = `import * as m from 'express-client-credentials'; import { issuer } from 'express-client-credentials'; console.log(typeof issuer === 'function' && ${JSON.stringify(EXPORTS)}.every((n) => typeof m[n] === 'function') ? 'ok' : 'missing')`;
    expect(node(['--input-type=module', '-e', script])).toBe('ok');
  });

  it('serves the testing entry point from require() and import', () => {
    expect(node(['-e', "const t = require('express-client-credentials/testing'); console.log(typeof t.mintToken, typeof t.testIssuer)"])).toBe('function function');
    expect(node(['--input-type=module', '-e', "import { testIssuer } from 'express-client-credentials/testing'; console.log(typeof testIssuer().token())"])).toBe('string');
  });

  it('serves tokenClient() from express-client-credentials/client, loading neither bcrypt nor the JWS code nor Express', () => {
    const script = `const c = require('express-client-credentials/client');
      const heavy = Object.keys(require.cache).filter((path) => /node_modules[\\/](bcrypt|bcryptjs|jsonwebtoken|express)[\\/]/.test(path));
      console.log(typeof c.tokenClient, typeof c.TokenRequestError, heavy.length === 0 ? 'light' : heavy.join(','))`;
    expect(node(['-e', script])).toBe('function function light');
    expect(node(['--input-type=module', '-e', "import { tokenClient } from 'express-client-credentials/client'; console.log(typeof tokenClient)"])).toBe('function');
  });

  it('loads no bcrypt when the main entry point is imported: the comparison pool starts on first use', () => {
    const script = `require('express-client-credentials');
      console.log(Object.keys(require.cache).filter((path) => /node_modules[\\/](bcrypt|bcryptjs)[\\/]/.test(path)).join(',') || 'none')`;
    expect(node(['-e', script])).toBe('none');
  });

  it('runs the CLI named in package.json bin', () => {
    const bin = (require(join(ROOT, 'package.json')) as { bin: Record<string, string> }).bin['express-client-credentials'] ?? '';
    expect(node([join(ROOT, bin), '--help'])).toContain('create-client');
  });

  it('issues and verifies a token end to end from dist/', () => {
    const script = `
      const express = require('express');
      const { issuer, requireScope, hashSecret } = require('express-client-credentials');
      (async () => {
        const app = express();
        app.use('/token', issuer({ issuer: 'http://127.0.0.1:1', signingKey: { secret: 'x'.repeat(32) }, secretHashCost: 4, clients: [{ client_id: 'a', client_secret_hash: await hashSecret('b', 4), scope: 'read' }] }));
        app.get('/x', requireScope('read'), (req, res) => res.json(req.auth.scopes));
        const server = app.listen(0, '127.0.0.1', async () => {
          const base = 'http://127.0.0.1:' + server.address().port;
          const token = await (await fetch(base + '/token', { method: 'POST', headers: { authorization: 'Basic ' + Buffer.from('a:b').toString('base64'), 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' })).json();
          const res = await fetch(base + '/x', { headers: { authorization: 'Bearer ' + token.access_token } });
          console.log(res.status, JSON.stringify(await res.json()));
          server.close();
        });
      })();`;
    expect(node(['-e', script])).toBe('200 ["read"]');
  });

  it('ships declarations that type req.auth for users without extra setup', () => {
    // A user's project: its own folder, the package installed under node_modules, strict tsc.
    const project = mkdtempSync(join(tmpdir(), 'ecc-consumer-'));
    mkdirSync(join(project, 'node_modules'));
    symlinkSync(ROOT, join(project, 'node_modules', 'express-client-credentials'));
    for (const name of ['express', '@types']) symlinkSync(join(ROOT, 'node_modules', name), join(project, 'node_modules', name));
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, module: 'node16', moduleResolution: 'node16', target: 'ES2022', noEmit: true, types: ['node'] }, files: ['app.ts'] }));
    writeFileSync(
      join(project, 'app.ts'),
      `import express from 'express';
       import { issuer, requireScope, type AuthInfo } from 'express-client-credentials';
       const app = express();
       app.use('/token', issuer({ clients: [] }));
       app.get('/x', requireScope('read'), (req, res) => {
         const auth: AuthInfo | undefined = req.auth;
         const scopes: readonly string[] = req.auth?.scopes ?? [];
         res.json({ client: auth?.clientId, scopes });
       });
       // @ts-expect-error: req.auth is typed, not any
       const wrong: number = express.request.auth;
       void wrong;`,
    );
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], { encoding: 'utf8' });
  });

  it('type-checks every entry point under moduleResolution node (node10), which ignores exports, with skipLibCheck off', () => {
    // A CommonJS project of the older kind: its node_modules holds this package and everything installed here.
    const project = mkdtempSync(join(tmpdir(), 'ecc-node10-'));
    mkdirSync(join(project, 'node_modules'));
    symlinkSync(ROOT, join(project, 'node_modules', 'express-client-credentials'));
    for (const name of readdirSync(join(ROOT, 'node_modules'))) if (!name.startsWith('.')) symlinkSync(join(ROOT, 'node_modules', name), join(project, 'node_modules', name));
    const compilerOptions = { strict: true, module: 'commonjs', moduleResolution: 'node', target: 'ES2022', esModuleInterop: true, skipLibCheck: false, noEmit: true, types: ['node'] };
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['app.ts'] }));
    writeFileSync(
      join(project, 'app.ts'),
      `import { issuer } from 'express-client-credentials';
       import { mintToken } from 'express-client-credentials/testing';
       import { RedisRevocationStore } from 'express-client-credentials/redis';
       import { PostgresClientStore } from 'express-client-credentials/postgres';
       const token: string = mintToken({ scope: 'read' }, { secret: 'x'.repeat(32), issuer: 'https://auth.example.test' });
       void [issuer, token, RedisRevocationStore, PostgresClientStore];`,
    );
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], { encoding: 'utf8' });
  });

  it('builds on npm pack and publish, and runs no script when users install it', () => {
    const { scripts = {} } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
    expect(scripts.prepack).toBe('npm run build');
    // npm runs these on install: prepare also for git and tarball installs, where it needs the devDependencies.
    expect(Object.keys(scripts).filter((name) => ['preinstall', 'install', 'postinstall', 'prepare'].includes(name))).toEqual([]);
  });
});
