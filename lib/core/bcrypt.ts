// bcrypt comparisons off the event loop's thread and below its priority: a burst of first-time
// clients must not slow the requests the process is serving meanwhile. Comparisons run in worker
// threads that lower their own scheduling priority (Linux: nice 19 for that thread only), with the
// native `bcrypt` package when it loads (an optional dependency), else bcryptjs. Same hashes.

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

type Compare = (secret: string, hash: string) => Promise<boolean>;

/** The native module's path, if it loads on this platform. */
function nativeModule(): string | undefined {
  try {
    const path = require.resolve('bcrypt');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(path);
    return path;
  } catch {
    return undefined;
  }
}

/** The module the workers load, found at the first comparison: importing the library loads no bcrypt. */
let modulePath: string | undefined;
const compareModule = (): string => (modulePath ??= nativeModule() ?? require.resolve('bcryptjs'));

/** Which implementation compares secrets in this process. */
export function bcryptImplementation(): 'bcrypt' | 'bcryptjs' {
  return compareModule() === require.resolve('bcryptjs') ? 'bcryptjs' : 'bcrypt';
}

// The worker is plain JavaScript, evaluated, so that it runs the same from sources and from dist/.
// On Linux /proc/thread-self names this thread, and setpriority() on a thread id affects that
// thread only: nice 19, so the event loop's thread always comes first. Elsewhere the worker keeps
// the default priority, still off the event loop's thread.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
try {
  const threadId = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
  require('node:os').setPriority(threadId, 19);
} catch {}
const bcrypt = require(workerData.module);
parentPort.on('message', ({ secret, hash }) => {
  let match = false;
  try { match = bcrypt.compareSync(secret, hash) === true; } catch { /* a malformed hash matches nothing */ }
  parentPort.postMessage(match);
});
`;

interface Job {
  readonly secret: string;
  readonly hash: string;
  readonly resolve: (match: boolean) => void;
  readonly reject: (error: Error) => void;
}

/** A fixed set of workers, one job each at a time, the rest queued; referenced only while busy. */
class ComparePool {
  readonly #idle: Worker[] = [];
  readonly #queue: Job[] = [];
  #started = 0;

  constructor(
    private readonly size: number,
    private readonly module: () => string,
  ) {}

  /** Stops the workers that have nothing to do; busy ones finish first, and new ones start on demand. */
  releaseIdle(): void {
    for (const worker of this.#idle.splice(0)) {
      this.#started -= 1;
      void worker.terminate();
    }
  }

  compare(secret: string, hash: string): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ secret, hash, resolve, reject });
      this.#dispatch();
    });
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      let worker = this.#idle.pop();
      if (worker === undefined && this.#started >= this.size) return;
      try {
        worker ??= this.#start();
      } catch (error) {
        this.#queue.shift()!.reject(error as Error); // no thread to be had: this comparison fails, as a 500
        continue;
      }
      this.#run(worker, this.#queue.shift()!);
    }
  }

  #start(): Worker {
    // No execArgv: the parent's loaders and preloads (a TypeScript loader, an APM agent) have no
    // business in a worker that only compares hashes, and would cost it memory.
    const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], resourceLimits: { maxYoungGenerationSizeMb: 2 }, workerData: { module: this.module() } });
    this.#started += 1;
    return worker;
  }

  #run(worker: Worker, job: Job): void {
    const done = (): void => {
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
      worker.unref();
    };
    const onMessage = (match: unknown): void => {
      done();
      this.#idle.push(worker);
      job.resolve(match === true);
      this.#dispatch();
    };
    const onFailure = (error: Error): void => {
      done();
      this.#started -= 1; // a worker that died is replaced on demand
      job.reject(error);
      this.#dispatch();
    };
    const onError = (error: Error): void => {
      void worker.terminate();
      onFailure(error);
    };
    const onExit = (code: number): void => onFailure(new Error(`the bcrypt worker exited with code ${code}`));
    worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    worker.ref(); // a pending comparison keeps the process alive, an idle worker does not
    worker.postMessage({ secret: job.secret, hash: job.hash });
  }
}

/** How many comparisons run at once in this process: one worker per core, four at most. */
export const compareWorkers = Math.min(4, availableParallelism());

const pool = new ComparePool(compareWorkers, compareModule);

/** Compares a secret with a bcrypt hash in a low-priority worker thread. */
export const compareSecret: Compare = (secret, hash) => pool.compare(secret, hash);

/** Stops the idle comparison workers (`issuer.close()`); they start again when needed. */
export function releaseIdleWorkers(): void {
  pool.releaseIdle();
}
