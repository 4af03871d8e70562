// The example server shuts down gracefully: on SIGTERM or SIGINT it stops accepting, lets the
// requests in flight finish, closes the issuer, and exits 0; under npm start the signal reaches it.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { closedPort as freePort } from './support/ports.js';

const ROOT = join(__dirname, '..');

/** The example's environment: a demo client, and none of this process's OAuth or store variables. */
function exampleEnv(port: number): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(OAUTH_|REDIS_URL|DATABASE_URL|PORT|HOST)/.test(name)));
  return { ...env, PORT: String(port), HOST: '127.0.0.1', OAUTH_TOKEN_SECRET: 'a-32-byte-secret-for-the-example!' };
}

/** Resolves with the demo client's secret once the server prints it. */
function started(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`the example printed: ${text}`)), 15_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const secret = /client_secret=(\S+)/.exec(text)?.[1];
      if (secret !== undefined) {
        clearTimeout(timer);
        resolve(secret);
      }
    });
    child.once('exit', (code) => reject(new Error(`the example exited (${code}): ${text}`)));
  });
}

function exited(child: ChildProcess, ms: number): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still running after ${ms} ms`)), ms);
    child.once('exit', (code) => (clearTimeout(timer), resolve(code)));
  });
}

/** Whether something accepts connections on the port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/** A token request whose body is sent in two parts: it is in flight between them. */
function slowTokenRequest(port: number, secret: string) {
  const socket = connect(port, '127.0.0.1');
  const body = 'grant_type=client_credentials';
  const opened = new Promise<void>((resolve, reject) => {
    socket.once('connect', () => {
      const basic = Buffer.from(`demo:${secret}`).toString('base64');
      socket.write(`POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic ${basic}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 11)}`);
      resolve();
    });
    socket.once('error', reject);
  });
  let reply = '';
  socket.on('data', (chunk: Buffer) => (reply += chunk.toString()));
  const closed = new Promise<string>((resolve) => socket.once('close', () => resolve(reply)));
  return {
    opened,
    finish: async (): Promise<number> => {
      socket.write(body.slice(11));
      const answer = await Promise.race([closed, new Promise<string>((resolve) => socket.once('data', () => setTimeout(() => resolve(reply), 50)))]);
      socket.destroy();
      return Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
    },
  };
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }
  }
});

describe('the example server shuts down gracefully', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('on %s: in-flight token requests finish with 200, new connections are refused, and it exits 0', async (signal) => {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/server.ts'], { cwd: ROOT, env: exampleEnv(port), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    children.push(child);
    const secret = await started(child);
    const inFlight = Array.from({ length: 20 }, () => slowTokenRequest(port, secret));
    await Promise.all(inFlight.map((request) => request.opened));
    await new Promise((resolve) => setTimeout(resolve, 500)); // the server has read their headers: they are requests in flight
    child.kill(signal);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await listening(port)).toBe(false);
    const statuses = await Promise.all(inFlight.map((request) => request.finish()));
    expect(statuses).toEqual(Array(20).fill(200));
    expect(await exited(child, 5000)).toBe(0);
  });

  it('npm start: SIGTERM to npm reaches the server, which exits and leaves no process or port behind', async () => {
    const port = await freePort();
    const npm = spawn('npm', ['start', '--silent'], { cwd: ROOT, env: exampleEnv(port), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    children.push(npm);
    await started(npm);
    const descendants = execFileSync('ps', ['-o', 'pid=', '--ppid', String(npm.pid)]).toString().trim().split(/\s+/).map(Number);
    expect(descendants.length).toBeGreaterThan(0);
    npm.kill('SIGTERM');
    await exited(npm, 5000);
    for (let i = 0; i < 50 && (await listening(port)); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await listening(port)).toBe(false);
    const alive = descendants.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    expect(alive).toEqual([]);
  });
});
