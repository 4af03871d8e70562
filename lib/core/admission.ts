// Admission control for secret comparisons (RFC 6749 §2.3.1 asks to protect against brute force;
// RFC 9700 §4.1 against exhaustion): bcrypt is the one costly thing an unauthenticated request can
// ask for, so it waits in a bounded queue, for a bounded time, a few per address, or is refused at once.

import { OAuthError } from './errors.js';

/**
 * Clients found in the registry go before unknown ids: a flood of made-up ids cannot starve the
 * clients that exist. Client ids are not secrets (RFC 6749 §2.2), so an id's lane may show under
 * overload; while the queue has room both lanes start at once and cost the same.
 */
export type Lane = 'known' | 'unknown';

export interface AdmissionLimits {
  /** Comparisons run at once (the worker count). */
  readonly concurrency: number;
  /** Comparisons waiting at most, both lanes together; unknown ids may fill half. */
  readonly maxQueued: number;
  /** Milliseconds a comparison may wait to start before its request gets a 503. */
  readonly maxWait: number;
  /** Comparisons queued or running for one address at most. */
  readonly perAddress: number;
}

/** What the queue needs of a request. */
export interface Ticket {
  readonly lane: Lane;
  /** The client's address, for the per-address bound; undefined counts as one address. */
  readonly address: string | undefined;
  /** Aborted when the client went away: its comparison is dropped from the queue. */
  readonly signal?: AbortSignal | undefined;
}

interface Waiting {
  readonly start: () => void;
  readonly refuse: (error: Error) => void;
}

const BUSY = 'The server is busy; try again later';

/** A 503 with a hint of when to come back (RFC 9110 §10.2.3). */
export function unavailable(description: string, retryAfter: number, cause?: unknown): OAuthError {
  return new OAuthError('temporarily_unavailable', 503, description, { 'Retry-After': String(retryAfter) }, cause === undefined ? undefined : { cause });
}

export class AdmissionQueue {
  readonly #queues: Record<Lane, Set<Waiting>> = { known: new Set(), unknown: new Set() };
  readonly #perAddress = new Map<string, number>();
  #running = 0;
  #closed = false;
  #drained: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  #peak = 0;

  constructor(private readonly limits: AdmissionLimits) {}

  /** Runs `task` when a slot is free, or rejects with a 503 without running it. */
  async run<T>(ticket: Ticket, task: () => Promise<T>): Promise<T> {
    const address = ticket.address ?? '';
    const retryAfter = Math.max(1, Math.ceil(this.limits.maxWait / 1000));
    if (this.#closed) throw unavailable('The server is shutting down; try again later', retryAfter);
    if (ticket.signal?.aborted === true) throw unavailable(BUSY, retryAfter);
    const held = this.#perAddress.get(address) ?? 0;
    if (held >= this.limits.perAddress) throw unavailable(BUSY, retryAfter);
    this.#perAddress.set(address, held + 1);
    try {
      await this.#admit(ticket.lane, retryAfter, ticket.signal);
      try {
        return await task();
      } finally {
        this.#running -= 1;
        this.#dispatch();
      }
    } finally {
      const left = (this.#perAddress.get(address) ?? 1) - 1;
      if (left === 0) this.#perAddress.delete(address);
      else this.#perAddress.set(address, left);
    }
  }

  /** Comparisons waiting now, and the most that ever waited (for `npm run flood`). */
  get queued(): number {
    return this.#queues.known.size + this.#queues.unknown.size;
  }

  get peakQueued(): number {
    return this.#peak;
  }

  /** Refuses new and waiting comparisons with a 503, and resolves once the running ones are done; the same promise each time. */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    for (const queue of Object.values(this.#queues)) {
      for (const waiting of queue) waiting.refuse(unavailable('The server is shutting down; try again later', 1));
      queue.clear();
    }
    this.#closing = this.#running === 0 ? Promise.resolve() : new Promise((resolve) => (this.#drained = resolve));
    return this.#closing;
  }

  #admit(lane: Lane, retryAfter: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.#running < this.limits.concurrency && this.queued === 0) {
      this.#running += 1;
      return Promise.resolve();
    }
    const queue = this.#queues[lane];
    const room = lane === 'known' ? this.limits.maxQueued - this.queued : Math.min(this.limits.maxQueued - this.queued, Math.floor(this.limits.maxQueued / 2) - queue.size);
    if (room <= 0) return Promise.reject(unavailable(BUSY, retryAfter));
    return new Promise<void>((resolve, reject) => {
      const leave = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        queue.delete(waiting);
      };
      const waiting: Waiting = {
        start: () => (leave(), resolve()),
        refuse: (error) => (leave(), reject(error)),
      };
      const onAbort = (): void => waiting.refuse(unavailable(BUSY, retryAfter));
      const timer = setTimeout(() => waiting.refuse(unavailable(BUSY, retryAfter)), this.limits.maxWait);
      signal?.addEventListener('abort', onAbort, { once: true });
      queue.add(waiting);
      this.#peak = Math.max(this.#peak, this.queued);
    });
  }

  #dispatch(): void {
    while (this.#running < this.limits.concurrency) {
      const next = first(this.#queues.known) ?? first(this.#queues.unknown);
      if (next === undefined) break;
      this.#running += 1;
      next.start();
    }
    if (this.#running === 0 && this.#drained !== undefined) this.#drained();
  }
}

function first<T>(set: Set<T>): T | undefined {
  for (const value of set) return value;
  return undefined;
}
