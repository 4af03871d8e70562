// Real servers on 127.0.0.1, for tests that need two processes' worth of HTTP.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';

export interface Listening {
  readonly server: http.Server;
  readonly url: string;
}

/** Listens on an ephemeral loopback port first, so the app can be built knowing its own address. */
export async function listenOnLoopback(): Promise<Listening> {
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  return { server, url: `http://${address}:${port}` };
}

export async function serve(build: (url: string) => Express): Promise<Listening> {
  const listening = await listenOnLoopback();
  listening.server.on('request', build(listening.url));
  return listening;
}

export async function close(listening: Listening | undefined): Promise<void> {
  if (listening === undefined) return;
  listening.server.closeAllConnections();
  await new Promise<void>((resolve, reject) => listening.server.close((error) => (error ? reject(error) : resolve())));
}
