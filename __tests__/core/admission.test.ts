// Admission control for secret comparisons: the queue's bounds, its lanes, abandoned requests and
// shutdown, with tasks the test finishes itself.

import { AdmissionQueue, type AdmissionLimits } from '../../lib/core/admission.js';
import { OAuthError } from '../../lib/core/errors.js';
import { throttledReporter } from '../../lib/core/throttled-report.js';

/** A task that runs until the test ends it, recording that it started. */
function controlled(started: string[], name: string) {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return { task: () => (started.push(name), done.then(() => name)), finish: () => finish() };
}

const limits = (overrides: Partial<AdmissionLimits> = {}): AdmissionLimits => ({ concurrency: 1, maxQueued: 4, maxWait: 10_000, perAddress: 10, ...overrides });

async function refusal(promise: Promise<unknown>): Promise<OAuthError> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(OAuthError);
  return error as OAuthError;
}

describe('admission control for secret comparisons (RFC 6749 §2.3.1, RFC 9700 §4.1)', () => {
  it('runs at most `concurrency` comparisons at once and starts the next as one ends', async () => {
    const queue = new AdmissionQueue(limits({ concurrency: 2 }));
    const started: string[] = [];
    const jobs = ['a', 'b', 'c'].map((name) => controlled(started, name));
    const results = jobs.map((job) => queue.run({ lane: 'known', address: 'x' }, job.task));
    await Promise.resolve();
    expect(started).toEqual(['a', 'b']);
    expect(queue.queued).toBe(1);
    jobs[0]!.finish();
    await results[0];
    expect(started).toEqual(['a', 'b', 'c']);
    jobs[1]!.finish();
    jobs[2]!.finish();
    await expect(Promise.all(results)).resolves.toEqual(['a', 'b', 'c']);
  });

  it('answers a comparison the full queue cannot hold at once with 503 temporarily_unavailable and Retry-After, without running it', async () => {
    const queue = new AdmissionQueue(limits({ maxQueued: 2, maxWait: 3000 }));
    const started: string[] = [];
    const jobs = ['run', 'q1', 'q2', 'over'].map((name) => controlled(started, name));
    const results = jobs.map((job) => queue.run({ lane: 'known', address: job === jobs[3] ? 'y' : 'x' }, job.task));
    const error = await refusal(results[3]!);
    expect([error.status, error.error, error.headers['Retry-After']]).toEqual([503, 'temporarily_unavailable', '3']);
    for (const job of jobs) job.finish();
    await Promise.all(results.slice(0, 3));
    expect(started).toEqual(['run', 'q1', 'q2']);
    expect(queue.peakQueued).toBe(2);
  });

  it('gives up on a comparison that waited maxWait, with a 503, and never runs it', async () => {
    const queue = new AdmissionQueue(limits({ maxWait: 50 }));
    const started: string[] = [];
    const first = controlled(started, 'first');
    const running = queue.run({ lane: 'known', address: 'x' }, first.task);
    const waited = Date.now();
    const error = await refusal(queue.run({ lane: 'known', address: 'x' }, controlled(started, 'late').task));
    expect(Date.now() - waited).toBeGreaterThanOrEqual(45);
    expect(error.status).toBe(503);
    first.finish();
    await running;
    expect(started).toEqual(['first']);
    expect(queue.queued).toBe(0);
  });

  it('drops the comparison of a client that went away from the queue', async () => {
    const queue = new AdmissionQueue(limits());
    const started: string[] = [];
    const first = controlled(started, 'first');
    const running = queue.run({ lane: 'known', address: 'x' }, first.task);
    const gone = new AbortController();
    const abandoned = queue.run({ lane: 'known', address: 'x', signal: gone.signal }, controlled(started, 'abandoned').task);
    expect(queue.queued).toBe(1);
    gone.abort();
    await refusal(abandoned);
    expect(queue.queued).toBe(0);
    first.finish();
    await running;
    expect(started).toEqual(['first']);
  });

  it('holds at most perAddress comparisons, queued or running, for one address', async () => {
    const queue = new AdmissionQueue(limits({ perAddress: 2 }));
    const started: string[] = [];
    const jobs = ['a', 'b', 'c', 'd'].map((name) => controlled(started, name));
    const results = jobs.slice(0, 3).map((job) => queue.run({ lane: 'known', address: 'greedy' }, job.task));
    const other = queue.run({ lane: 'known', address: 'other' }, jobs[3]!.task);
    expect((await refusal(results[2]!)).status).toBe(503);
    for (const job of jobs) job.finish();
    await Promise.all([results[0], results[1], other]);
    expect(started).toEqual(['a', 'b', 'd']);
  });

  it('serves clients found in the registry before unknown ids, which may fill half the queue only', async () => {
    const queue = new AdmissionQueue(limits({ maxQueued: 4 }));
    const started: string[] = [];
    const busy = controlled(started, 'busy');
    const running = queue.run({ lane: 'known', address: 'a' }, busy.task);
    const unknown = ['u1', 'u2', 'u3'].map((name) => controlled(started, name));
    const unknownResults = unknown.map((job, i) => queue.run({ lane: 'unknown', address: `u${i}` }, job.task));
    expect((await refusal(unknownResults[2]!)).status).toBe(503); // half of 4 is 2
    const known = controlled(started, 'known');
    const knownResult = queue.run({ lane: 'known', address: 'k' }, known.task);
    for (const job of [busy, ...unknown, known]) job.finish();
    await Promise.all([running, knownResult, unknownResults[0], unknownResults[1]]);
    expect(started).toEqual(['busy', 'known', 'u1', 'u2']);
  });

  it('close(): refuses queued and new comparisons with 503, and resolves once the running ones end', async () => {
    const queue = new AdmissionQueue(limits());
    const started: string[] = [];
    const running = controlled(started, 'running');
    const result = queue.run({ lane: 'known', address: 'x' }, running.task);
    const queued = queue.run({ lane: 'known', address: 'x' }, controlled(started, 'queued').task);
    let closed = false;
    const closing = queue.close().then(() => (closed = true));
    expect((await refusal(queued)).message).toMatch(/shutting down/);
    expect((await refusal(queue.run({ lane: 'known', address: 'x' }, controlled(started, 'new').task))).status).toBe(503);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(closed).toBe(false);
    running.finish();
    await Promise.all([result, closing]);
    expect(started).toEqual(['running']);
  });
});

describe('throttled failure reports: one line per kind and interval, with a count', () => {
  it('passes the first failure of a kind at once, counts the rest, and says how many in the next line', () => {
    let now = 0;
    const lines: string[] = [];
    const report = throttledReporter((line) => lines.push(line), 10_000, () => now);
    for (let i = 0; i < 50; i++) report('redis', 'Redis is down');
    report('postgres', 'PostgreSQL is down');
    now = 10_000;
    report('redis', 'Redis is down');
    expect(lines).toEqual(['Redis is down', 'PostgreSQL is down', 'Redis is down (and 49 more in the last 10 s)']);
  });
});
