// The load generator, a child process of run.ts pinned to its own core: takes jobs over IPC and
// answers with the measurements. Fixed-request jobs run autocannon (or wrk, when chosen); the memory
// job cycles through many distinct Authorization headers with autocannon; the probe and the burst
// use a small loop on node:http with hrtime latencies, since autocannon's histogram has 1 ms steps.

import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import autocannon from 'autocannon';
import {
  FORM_TYPE, GUARDED_PATH, HOST, TOKEN_FORM, TOKEN_PATH, basic, loadFixtures,
  type LoadJob, type LoadReply, type LoadResult, type ProbeResult, type RequestSpec,
} from './common.js';

const fixtures = loadFixtures();

function fromAutocannon(result: autocannon.Result): LoadResult {
  const ok = result['2xx'];
  return {
    rps: ok / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    total: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    seconds: result.duration,
    tool: 'autocannon',
  };
}

/** One request, or a list that each connection cycles through (built once: no per-request set-up). */
async function autocannonFixed(port: number, requests: readonly RequestSpec[], connections: number, seconds: number): Promise<LoadResult> {
  const [first] = requests;
  if (first === undefined) throw new Error('a fixed job needs a request');
  const result = await autocannon({
    url: `http://${HOST}:${port}${first.path}`,
    method: first.method,
    headers: { ...first.headers },
    ...(first.body === undefined ? {} : { body: first.body }),
    ...(requests.length > 1
      ? { requests: requests.map((r) => ({ method: r.method, path: r.path, headers: { ...r.headers }, ...(r.body === undefined ? {} : { body: r.body }) })) }
      : {}),
    connections,
    pipelining: 1,
    duration: seconds,
  });
  return fromAutocannon(result);
}

const luaString = (text: string): string => `"${text.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, '\\n')}"`;

/**
 * wrk with one thread; a list of requests is cycled with wrk.format() in request(). Its done() hook
 * prints the figures as JSON, so that nothing depends on wrk's text layout.
 */
async function wrkFixed(port: number, requests: readonly RequestSpec[], connections: number, seconds: number): Promise<LoadResult> {
  const [first] = requests;
  if (first === undefined) throw new Error('a fixed job needs a request');
  const script = path.join(os.tmpdir(), `bench-wrk-${process.pid}.lua`);
  // wrk.format() adds no Host header of its own, and Node's server refuses HTTP/1.1 requests without one.
  const headersOf = (r: RequestSpec): string => `{ ${Object.entries({ Host: `${HOST}:${port}`, ...r.headers }).map(([n, v]) => `[${luaString(n)}] = ${luaString(v)}`).join(', ')} }`;
  const rotation =
    requests.length === 1 ? []
    : [
        'local list = {}',
        ...requests.map((r, i) => `list[${i + 1}] = wrk.format(${luaString(r.method)}, ${luaString(r.path)}, ${headersOf(r)}, ${r.body === undefined ? 'nil' : luaString(r.body)})`),
        'local n = 0',
        'request = function() n = n % #list + 1; return list[n] end',
      ];
  fs.writeFileSync(
    script,
    [
      `wrk.method = ${luaString(first.method)}`,
      ...(first.body === undefined ? [] : [`wrk.body = ${luaString(first.body)}`]),
      ...Object.entries(first.headers).map(([name, value]) => `wrk.headers[${luaString(name)}] = ${luaString(value)}`),
      ...rotation,
      'done = function(summary, latency, requests)',
      '  local e = summary.errors',
      '  io.write(string.format("BENCH_JSON {\\"requests\\":%d,\\"duration_us\\":%d,\\"p50_us\\":%d,\\"p99_us\\":%d,\\"status\\":%d,\\"errors\\":%d}\\n",',
      '    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))',
      'end',
      '',
    ].join('\n'),
  );
  const threads = 1;
  // wrk takes whole seconds.
  seconds = Math.max(1, Math.round(seconds));
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      'wrk',
      [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, `http://${HOST}:${port}${first.path}`],
      { timeout: (seconds + 30) * 1000 },
      (error, out) => (error ? reject(error) : resolve(out)),
    );
  });
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (line === undefined) throw new Error(`wrk printed no figures:\n${stdout}`);
  const figures = JSON.parse(line.slice('BENCH_JSON '.length)) as { requests: number; duration_us: number; p50_us: number; p99_us: number; status: number; errors: number };
  const duration = figures.duration_us / 1e6;
  return {
    rps: (figures.requests - figures.status) / duration,
    p50: figures.p50_us / 1000,
    p99: figures.p99_us / 1000,
    total: figures.requests,
    non2xx: figures.status,
    errors: figures.errors,
    seconds: duration,
    tool: 'wrk',
  };
}

async function fixed(job: Extract<LoadJob, { kind: 'fixed' }>): Promise<LoadResult> {
  const run = job.tool === 'wrk' ? wrkFixed : autocannonFixed;
  if (job.warmupSeconds > 0) await run(job.port, job.requests, job.connections, job.warmupSeconds);
  return run(job.port, job.requests, job.connections, job.seconds);
}

/**
 * The memory test's load: request number i (counted from `offset` across all connections) is a token
 * request of client ⌊i/10⌋ mod 1,000 when i mod 10 is 9, else a guarded GET with the next of 10,000 tokens.
 */
async function memory(job: Extract<LoadJob, { kind: 'memory' }>): Promise<LoadResult> {
  let i = job.offset;
  const clients = fixtures.memoryClients;
  const tokens = fixtures.memoryTokens;
  const result = await autocannon({
    url: `http://${HOST}:${job.port}`,
    connections: job.connections,
    pipelining: 1,
    amount: job.amount,
    requests: [
      {
        setupRequest: (request) => {
          const n = i++;
          if (n % 10 === 9) {
            const client = clients[Math.floor(n / 10) % clients.length]!;
            return { ...request, method: 'POST', path: TOKEN_PATH, headers: { authorization: basic(client), 'content-type': FORM_TYPE }, body: TOKEN_FORM };
          }
          const token = tokens[(n - Math.floor(n / 10)) % tokens.length]!;
          return { ...request, method: 'GET', path: GUARDED_PATH, headers: { authorization: `Bearer ${token}` }, body: undefined };
        },
      },
    ],
  });
  return fromAutocannon(result);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

function once(port: number, spec: RequestSpec): Promise<{ status: number; ms: number }> {
  const start = process.hrtime.bigint();
  return new Promise((resolve) => {
    const req = http.request({ host: HOST, port, method: spec.method, path: spec.path, headers: spec.headers, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: Number(process.hrtime.bigint() - start) / 1e6 }));
    });
    req.on('error', () => resolve({ status: 0, ms: Number(process.hrtime.bigint() - start) / 1e6 }));
    req.end(spec.body);
  });
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * Open-loop probe of the guarded route: one request every 1/rate s whether or not the previous ones
 * have answered, so that a stalled event loop shows in the latencies instead of lowering the rate.
 */
function startProbe(port: number, rate: number): { stop: () => Promise<ProbeResult> } {
  const spec: RequestSpec = { method: 'GET', path: GUARDED_PATH, headers: { authorization: `Bearer ${fixtures.burstToken}` } };
  const latencies: number[] = [];
  const pending = new Set<Promise<void>>();
  let failures = 0;
  const interval = 1000 / rate;
  const started = performance.now();
  let sent = 0;
  let stopped = false;
  const tick = (): void => {
    if (stopped) return;
    // Catch up on the schedule: never skip a slot because a timer fired late.
    const due = Math.floor((performance.now() - started) / interval) + 1;
    while (sent < due) {
      sent += 1;
      const request = once(port, spec).then(({ status, ms }) => {
        if (status === 200) latencies.push(ms);
        else failures += 1;
        pending.delete(request);
      });
      pending.add(request);
    }
    setTimeout(tick, Math.max(1, interval / 2));
  };
  tick();
  return {
    stop: async () => {
      stopped = true;
      await Promise.all(pending);
      const sorted = [...latencies].sort((a, b) => a - b);
      return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN, samples: sorted.length, failures };
    },
  };
}

/** First-time clients, each once, from `connections` concurrent loops; the probe runs meanwhile. */
async function burst(job: Extract<LoadJob, { kind: 'burst' }>): Promise<LoadReply> {
  const clients = fixtures.burstClients;
  const probe = startProbe(job.port, job.rate);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const latencies: number[] = [];
  let next = 0;
  let non2xx = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: job.connections }, async () => {
      while (next < clients.length) {
        const client = clients[next++]!;
        const { status, ms } = await once(job.port, {
          method: 'POST',
          path: TOKEN_PATH,
          headers: { authorization: basic(client), 'content-type': FORM_TYPE },
          body: TOKEN_FORM,
        });
        if (status === 200) latencies.push(ms);
        else non2xx += 1;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const during = await probe.stop();
  const sorted = latencies.sort((a, b) => a - b);
  return {
    type: 'burst',
    probe: during,
    burstSeconds: seconds,
    burst: {
      rps: latencies.length / seconds,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      total: clients.length,
      non2xx,
      errors: 0,
      seconds,
      tool: 'node:http',
    },
  };
}

async function handle(job: LoadJob): Promise<LoadReply> {
  switch (job.kind) {
    case 'fixed':
      return { type: 'fixed', result: await fixed(job) };
    case 'memory':
      return { type: 'memory', result: await memory(job) };
    case 'probe': {
      const probe = startProbe(job.port, job.rate);
      await new Promise((resolve) => setTimeout(resolve, job.seconds * 1000));
      return { type: 'probe', result: await probe.stop() };
    }
    case 'burst':
      return burst(job);
  }
}

process.on('message', (job: LoadJob) => {
  handle(job).then(
    (reply) => process.send?.(reply),
    (error: unknown) => process.send?.({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies LoadReply),
  );
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready' });
