// Loopback: where plain http is tolerated, since nothing leaves the machine.

/** A URL host on this machine: `localhost`, 127.0.0.0/8 or `[::1]`. */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || isLoopbackAddress(hostname);
}

/** A peer address on this machine, as Node gives it: 127.0.0.0/8, `::1`, or IPv4 mapped in IPv6. */
export function isLoopbackAddress(address: string): boolean {
  return address === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/i.test(address);
}
