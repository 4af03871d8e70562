// A TCP proxy on 127.0.0.1 in front of PostgreSQL that a test can cut or stall: an outage, or a
// network that keeps connections open but delivers nothing, without touching the machine's PostgreSQL.

import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { DATABASE_URL } from './services.js';

export interface PgProxy {
  /** DATABASE_URL, through the proxy. */
  readonly url: string;
  /** Destroys every connection, and each new one at once, until `restore()`. */
  cut(): void;
  /** Keeps every connection open, new ones included, but forwards no byte until `restore()`. */
  stall(): void;
  /** Forwards again, what a stall held back first. */
  restore(): void;
  /** Connections open through the proxy now. */
  readonly connections: number;
  close(): Promise<void>;
}

interface Pair {
  readonly sockets: readonly [Socket, Socket];
  /** Bytes held back during a stall, with where they go, in arrival order. */
  readonly held: [Socket, Buffer][];
}

export async function pgProxy(url = DATABASE_URL): Promise<PgProxy> {
  const target = new URL(url);
  let mode: 'open' | 'cut' | 'stalled' = 'open';
  const pairs = new Set<Pair>();
  const server = createServer((client) => {
    if (mode === 'cut') {
      client.destroy();
      return;
    }
    const upstream = connect(Number(target.port || 5432), target.hostname);
    const pair: Pair = { sockets: [client, upstream], held: [] };
    pairs.add(pair);
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      from.on('data', (chunk: Buffer) => (mode === 'open' ? to.write(chunk) : pair.held.push([to, chunk])));
      from.on('error', () => undefined);
      from.on('close', () => {
        pairs.delete(pair);
        to.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String((server.address() as AddressInfo).port);
  const destroyAll = (): void => {
    for (const { sockets } of pairs) for (const socket of sockets) socket.destroy();
    pairs.clear();
  };
  return {
    url: proxied.href,
    cut() {
      mode = 'cut';
      destroyAll();
    },
    stall() {
      mode = 'stalled';
    },
    restore() {
      mode = 'open';
      for (const pair of pairs) for (const [to, chunk] of pair.held.splice(0)) to.write(chunk);
    },
    get connections() {
      return pairs.size;
    },
    close() {
      mode = 'cut';
      destroyAll();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
