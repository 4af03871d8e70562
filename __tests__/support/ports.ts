// Loopback ports, without jest globals, so that npm run flood can use them too.

import { createServer, type AddressInfo } from 'node:net';

/** A loopback port where nothing listens (a Redis or PostgreSQL that is down, or a port to start a server on). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
