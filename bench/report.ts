// Turns the measurements into bench/RESULTS.md and the table printed at the end of the run.

import type { Alg, LoadResult, ProbeResult } from './common.js';
import type { ServerConfig } from './server.js';
import { max, median, min } from './stats.js';

export interface Variant {
  readonly id: string;
  readonly group: 'guard' | 'token';
  /** `reference`: not a product, a lower bound of what ours can cost (see server.ts). */
  readonly role: 'floor' | 'ours' | 'peer' | 'reference';
  readonly label: string;
  readonly kind: string;
  readonly config: ServerConfig;
  readonly alg?: Alg;
  readonly cache?: 'on' | 'off';
}

export interface VariantSummary {
  readonly variant: Variant;
  /** One value per successful round. */
  readonly rps: readonly number[];
  readonly p99: readonly number[];
  /** Variant / floor of the same round. */
  readonly rpsRatios: readonly number[];
  readonly p99Ratios: readonly number[];
  readonly errors: readonly string[];
  readonly byRound: ReadonlyMap<number, LoadResult>;
  /** Per counted round, from /proc when available: cores the server used, and cores other processes used. */
  readonly serverCores: readonly number[];
  readonly foreignCores: readonly number[];
}

export interface MemoryOutcome {
  readonly after: readonly { requests: number; rss: number; heapUsed: number }[];
  readonly load: readonly LoadResult[];
  readonly notes: readonly string[];
  readonly error?: string;
  /** Cores other processes used meanwhile. */
  readonly foreignCores?: number | undefined;
}

export interface BurstOutcome {
  readonly label: string;
  readonly idle?: ProbeResult;
  readonly during?: ProbeResult;
  readonly burst?: LoadResult;
  readonly notes: readonly string[];
  readonly error?: string;
  /** Cores other processes used during the burst. */
  readonly foreignCores?: number | undefined;
}

export interface Report {
  readonly startedAt: Date;
  readonly finishedAt: Date;
  readonly machine: { cpu: string; cpus: number; memoryGiB: number; node: string; os: string };
  readonly settings: {
    quick: boolean;
    rounds: number;
    seconds: number;
    warmupSeconds: number;
    connections: number;
    loader: string;
    pinning: string;
    memoryRequests: readonly number[];
    memoryTokens: number;
    memoryClients: number;
    memoryHashCost: number;
    burstClients: number;
    burstConnections: number;
    probeRate: number;
    filtered: boolean;
    quietCores: number;
  };
  readonly versions: Readonly<Record<string, string>>;
  readonly support: { tokenCache: boolean; secretCache: boolean };
  readonly summaries: readonly VariantSummary[];
  readonly notes: ReadonlyMap<string, readonly string[]>;
  readonly memory: MemoryOutcome | undefined;
  /** The first is the library's default set-up, which the target is about; the others are for comparison. */
  readonly bursts: readonly BurstOutcome[];
}

/** The issue's own measurements (wrk, 2 cores, pinned apart), shown next to ours for the peers. */
const ISSUE_FIGURES: Record<string, string> = {
  'eojb-hs': '0.59',
  'eojb-rs': '0.54',
  'express-jwt-hs': '0.18',
  'express-jwt-rs': '0.31',
  'oidc-provider-hs': '0.52',
  'oidc-provider-es': '0.52',
  'oauth2-server-hs': '0.59',
  'oauth2-server-es': '0.59',
};

const fixed = (value: number, digits: number): string => (Number.isFinite(value) ? value.toFixed(digits) : '–');
const ms = (value: number): string => (Number.isFinite(value) ? (value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)) : '–');
const range = (values: readonly number[], format: (v: number) => string): string =>
  values.length === 0 ? '–' : values.length === 1 ? format(values[0]!) : `${format(median(values))} (${format(min(values))}–${format(max(values))})`;
const ratio = (values: readonly number[]): string =>
  values.length === 0 ? '–' : values.length === 1 ? fixed(values[0]!, 2) : `${fixed(median(values), 2)} (${fixed(min(values), 2)}–${fixed(max(values), 2)})`;
const count = (n: number): string => n.toLocaleString('en-US');
const samples = (p: ProbeResult): string => `${p.samples}${p.failures > 0 ? ` (${p.failures} failed)` : ''}`;
const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

function resultsTable(report: Report): string {
  const rows = [
    '| Variant | req/s, median (min–max) | × floor | p99 ms, median (min–max) | p99 × floor | server CPU | issue\'s × floor |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  const busy = (s: VariantSummary): string => (s.foreignCores.some((f) => f > report.settings.quietCores) ? ' †' : '');
  for (const group of ['guard', 'token'] as const) {
    rows.push(
      group === 'guard'
        ? '| **Guard**: GET of a protected route, one valid token reused | | | | | | |'
        : '| **Token endpoint**: client_credentials, Basic auth, repeat clients | | | | | | |',
    );
    for (const s of report.summaries.filter((x) => x.variant.group === group)) {
      if (s.rps.length === 0) {
        rows.push(`| ${s.variant.label} | failed | | | | | ${ISSUE_FIGURES[s.variant.id] ?? ''} |`);
        continue;
      }
      rows.push(
        `| ${s.variant.label}${busy(s)} | ${range(s.rps, (v) => v.toFixed(0))} | ${s.variant.role === 'floor' ? '1' : ratio(s.rpsRatios)} | ` +
          `${range(s.p99, ms)} | ${s.variant.role === 'floor' ? '1' : ratio(s.p99Ratios)} | ` +
          `${s.serverCores.length === 0 ? '–' : fixed(median(s.serverCores), 2)} | ${ISSUE_FIGURES[s.variant.id] ?? ''} |`,
      );
    }
  }
  return rows.join('\n');
}

interface Target {
  readonly name: string;
  readonly goal: string;
  readonly measured: number;
  readonly pass: boolean | undefined;
  readonly note?: string;
}

function targets(report: Report): Target[] {
  const byId = new Map(report.summaries.map((s) => [s.variant.id, s]));
  const list: Target[] = [];
  const atLeast = (name: string, goal: number, measured: number, note?: string): Target => ({
    name, goal: `≥ ${goal}`, measured, pass: Number.isFinite(measured) ? measured >= goal : undefined, ...(note === undefined ? {} : { note }),
  });
  const atMost = (name: string, goal: number, measured: number, strict: boolean, note?: string): Target => ({
    name, goal: `${strict ? '<' : '≤'} ${goal}`, measured, pass: Number.isFinite(measured) ? (strict ? measured < goal : measured <= goal) : undefined, ...(note === undefined ? {} : { note }),
  });
  const floorRatio = (id: string): number => median(byId.get(id)?.rpsRatios ?? []);
  /** Median over the rounds of a / (the fastest of the others in the same round). */
  const paired = (id: string, others: readonly string[]): number => {
    const a = byId.get(id);
    if (a === undefined) return Number.NaN;
    const ratios: number[] = [];
    for (const [round, result] of a.byRound) {
      const peers = others.map((o) => byId.get(o)?.byRound.get(round)?.rps).filter((v): v is number => v !== undefined);
      if (peers.length === others.length) ratios.push(result.rps / Math.max(...peers));
    }
    return median(ratios);
  };
  const short = { HS256: 'hs', ES256: 'es', RS256: 'rs' } as const;
  const noCacheNote = report.support.tokenCache ? undefined : 'this version has no `tokenCache` option: "off" ran with the default';
  for (const alg of ['HS256', 'ES256', 'RS256'] as const) {
    const s = short[alg];
    list.push(atLeast(`Guard ${alg}, token cache on: × unguarded floor`, 0.93, floorRatio(`ours-${s}`)));
  }
  for (const alg of ['HS256', 'ES256', 'RS256'] as const) {
    const s = short[alg];
    list.push(atLeast(`Guard ${alg}, token cache on: × express-oauth2-jwt-bearer ${alg}`, 1.5, paired(`ours-${s}`, [`eojb-${s}`])));
    list.push(atLeast(`Guard ${alg}, token cache off: × express-oauth2-jwt-bearer ${alg}`, 1.15, paired(`ours-${s}-nocache`, [`eojb-${s}`]), noCacheNote));
  }
  for (const alg of ['HS256', 'ES256', 'RS256'] as const) {
    const s = short[alg];
    const peers = report.summaries.filter((x) => x.variant.role === 'peer' && x.variant.group === 'guard' && x.variant.alg === alg && x.p99.length > 0);
    const best = Math.min(...peers.map((p) => median(p.p99)));
    const ours = byId.get(`ours-${s}`);
    const names = peers.map((p) => p.variant.label.replace(` ${alg}`, '')).join(', ');
    list.push(atMost(`Guard ${alg}, token cache on: p99 ÷ best peer's p99 (${names || 'none'})`, 1, ours === undefined || peers.length === 0 ? Number.NaN : median(ours.p99) / best, false));
  }
  for (const alg of ['HS256', 'ES256'] as const) {
    const s = short[alg];
    list.push(atLeast(`Token endpoint ${alg}, repeat clients: × Express POST floor`, 0.8, floorRatio(`ours-token-${s}`)));
    list.push(atLeast(`Token endpoint ${alg}: × the faster of oidc-provider and oauth2-server ${alg}`, 1.3, paired(`ours-token-${s}`, [`oidc-provider-${s}`, `oauth2-server-${s}`])));
  }
  // Not targets: the reference endpoint shows how far the libraries ours must use allow it to go.
  const bound = (name: string, measured: number): Target => ({ name, goal: '–', measured, pass: undefined, note: 'a bound, not a target' });
  list.push(bound('Reference endpoint HS256: × Express POST floor', floorRatio('token-reference-hs')));
  list.push(bound('Reference endpoint HS256: × the faster of oidc-provider and oauth2-server HS256', paired('token-reference-hs', ['oidc-provider-hs', 'oauth2-server-hs'])));
  const burst = report.bursts[0];
  list.push(
    atMost(
      `Guarded route p99 during a burst of first-time clients ÷ its idle p99${burst === undefined ? '' : ` (${burst.label})`}`,
      5,
      burst?.idle !== undefined && burst.during !== undefined ? burst.during.p99 / burst.idle.p99 : Number.NaN,
      true,
    ),
  );
  const memory = report.memory;
  const [first, last] = [memory?.after[0], memory?.after.at(-1)];
  list.push(
    atMost(
      `RSS after ${count(last?.requests ?? report.settings.memoryRequests.at(-1) ?? 0)} requests ÷ RSS after ${count(first?.requests ?? report.settings.memoryRequests[0] ?? 0)}`,
      1.5,
      first !== undefined && last !== undefined && last !== first ? last.rss / first.rss : Number.NaN,
      false,
    ),
  );
  return list;
}

function targetsTable(report: Report): string {
  const rows = ['| Target (issue 6) | Goal | Measured | |', '|---|---:|---:|---|'];
  for (const t of targets(report)) {
    const verdict = t.pass === undefined ? 'n/a' : t.pass ? 'pass' : '**FAIL**';
    rows.push(`| ${t.name} | ${t.goal} | ${fixed(t.measured, 2)} | ${verdict}${t.note === undefined ? '' : ` (${t.note})`} |`);
  }
  return rows.join('\n');
}

export function report(report: Report): { markdown: string; table: string } {
  const { machine, settings } = report;
  const date = report.startedAt.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  const machineLine = `${machine.cpus} × ${machine.cpu}, ${machine.memoryGiB.toFixed(1)} GiB, ${machine.os}, Node ${machine.node}`;
  const table = `${resultsTable(report)}\n\n${targetsTable(report)}`;
  const lines: string[] = [];
  lines.push('# Benchmark results', '');
  lines.push(
    `Written by \`${settings.quick ? 'BENCH_QUICK=1 ' : ''}npm run bench\` on ${date} ` +
      `(${((report.finishedAt.getTime() - report.startedAt.getTime()) / 1000).toFixed(0)} s).` +
      (settings.quick ? ' **Quick mode: a smoke run, too short for conclusions.**' : '') +
      (settings.filtered ? ' **BENCH_ONLY was set: only some variants ran.**' : ''),
    '',
  );
  lines.push('## Machine and method', '');
  lines.push(`- Machine: ${machineLine}.`);
  lines.push(
    `- Load: ${settings.loader}${settings.loader === 'autocannon' ? ` ${report.versions.autocannon ?? ''}` : ''} in a process of its own, ` +
      `${settings.connections} keep-alive connections, ${settings.warmupSeconds} s warm-up (not measured) then ${settings.seconds} s measured per variant; ` +
      `${settings.rounds} round(s), variants interleaved, each round starting at another variant; every server started fresh in its own process for each run, on 127.0.0.1 (ephemeral port).`,
  );
  lines.push(`- Pinning: ${settings.pinning}.`);
  const foreign = report.summaries.flatMap((s) => s.foreignCores);
  if (foreign.length > 0) {
    lines.push(
      `- Other processes on the machine used ${fixed(median(foreign), 2)} cores in the median run (max ${fixed(max(foreign), 2)}), from /proc/stat; ` +
        `each run waits for them to drop under ${settings.quietCores} cores (for a while), and † marks a variant with a run above that. ` +
        '"server CPU" is the cores the server process used during warm-up and measurement (1.00: the server, not the load generator, was the limit).',
    );
  }
  lines.push(
    '- Figures: req/s counts 2xx answers only (a run with any other answer is discarded); × floor is the variant divided by the floor of the same round, ' +
      'median over the rounds (min–max in brackets). Each variant is checked before it is measured: a valid request answers 200, a tampered token 401, ' +
      'a token has the expected alg, iss and aud, a wrong secret is refused.' +
      (settings.loader === 'autocannon' ? ' autocannon records latencies in whole milliseconds.' : ''),
  );
  lines.push(
    `- Options of this version: guard \`tokenCache\` ${report.support.tokenCache ? 'present' : '**absent** (the "cache off" rows ran with the default)'}; ` +
      `issuer \`secretCache\` ${report.support.secretCache ? 'present' : '**absent** (ran with the default)'}.`,
  );
  lines.push('', '| Package | Version |', '|---|---|');
  for (const [name, version] of Object.entries(report.versions)) lines.push(`| ${name} | ${version} |`);
  lines.push('', '## Throughput and latency', '', resultsTable(report), '');
  lines.push("The issue's column: its own measurement of the peers (wrk, 2 cores, pinned apart), for comparison.", '');
  lines.push('## Targets', '', targetsTable(report), '');
  lines.push(
    'Peer comparisons are taken within each round (ours ÷ the peer, or ÷ the faster of the two token peers) and their median is shown. ' +
      'The p99 target compares medians with the best peer of the same algorithm.',
    '',
  );

  lines.push('## Memory', '');
  const memory = report.memory;
  if (memory === undefined) lines.push('Skipped (BENCH_SKIP).', '');
  else {
    lines.push(
      `One process with the issuer and a guarded route (\`authenticate({ issuer })\`, ES256), ${count(settings.memoryTokens)} distinct tokens and ` +
        `${count(settings.memoryClients)} distinct clients (bcrypt cost ${settings.memoryHashCost} for these hashes, so that 1,000 first-time clients take ` +
        'seconds, not a minute: the size of an entry does not depend on the cost); one request in ten is a token request, the others GETs, each with the next ' +
        'token or client in turn. Resident size read in the server process after a forced garbage collection.',
      '',
    );
    if (memory.after.length > 0) {
      lines.push('| After requests | RSS | V8 heap used |', '|---:|---:|---:|');
      for (const a of memory.after) lines.push(`| ${count(a.requests)} | ${mib(a.rss)} | ${mib(a.heapUsed)} |`);
      lines.push('');
      if (memory.load.length > 0) {
        lines.push(
          `Load: ${memory.load.map((l) => `${l.rps.toFixed(0)} req/s`).join(', then ')}` +
            `${memory.foreignCores === undefined ? '' : `; other processes used ${fixed(memory.foreignCores, 2)} cores meanwhile`}.`,
          '',
        );
      }
    }
    if (memory.error !== undefined) lines.push(`Failed: ${memory.error}`, '');
  }

  lines.push('## Burst of first-time clients', '');
  if (report.bursts.length === 0) lines.push('Skipped (BENCH_SKIP).', '');
  else {
    lines.push(
      `One process with the issuer (bcrypt cost 10 hashes) and a guarded route. A probe sends ${settings.probeRate} GETs a second to the guarded route, ` +
        'on a fixed schedule whatever the answers (latencies by hrtime); first its idle p99, then its p99 while ' +
        `${settings.burstClients} first-time clients ask for tokens from ${settings.burstConnections} concurrent connections, each once. ` +
        'The server process is pinned as in the other runs, so its bcrypt worker threads (nice 19 on Linux) share the core with its event loop.',
      '',
    );
    lines.push(
      '| bcrypt | Guarded route | p50 ms | p99 ms | max ms | samples | p99 ÷ idle p99 | token requests | their p50 ms | other processes (cores) |',
      '|---|---|---:|---:|---:|---:|---:|---|---:|---:|',
    );
    for (const burst of report.bursts) {
      if (burst.idle !== undefined && burst.during !== undefined) {
        const b = burst.burst;
        lines.push(`| ${burst.label} | idle | ${ms(burst.idle.p50)} | ${ms(burst.idle.p99)} | ${ms(burst.idle.max)} | ${samples(burst.idle)} | | | | |`);
        lines.push(
          `| | during the burst | ${ms(burst.during.p50)} | ${ms(burst.during.p99)} | ${ms(burst.during.max)} | ${samples(burst.during)} | ` +
            `${fixed(burst.during.p99 / burst.idle.p99, 1)} | ${b === undefined ? '' : `${b.total} in ${b.seconds.toFixed(1)} s`} | ${b === undefined ? '' : ms(b.p50)} | ` +
            `${burst.foreignCores === undefined ? '–' : fixed(burst.foreignCores, 2)} |`,
        );
      }
      if (burst.error !== undefined) lines.push(`| ${burst.label} | failed: ${burst.error} | | | | | | | | |`);
    }
    lines.push('');
  }

  lines.push('## Configurations', '');
  for (const s of report.summaries) {
    const notes = report.notes.get(s.variant.id) ?? [];
    lines.push(`- ${s.variant.label} (\`${s.variant.id}\`)${notes.length > 0 ? `: ${notes.join('; ')}` : ''}`);
  }
  if (memory !== undefined && memory.notes.length > 0) lines.push(`- memory test: ${memory.notes.join('; ')}`);
  for (const burst of report.bursts) if (burst.notes.length > 0) lines.push(`- burst test, ${burst.label}: ${burst.notes.join('; ')}`);
  lines.push('');
  const errors = report.summaries.flatMap((s) => s.errors.map((e) => `- ${s.variant.label}, ${e}`));
  if (errors.length > 0) lines.push('## Failed runs', '', ...errors, '');
  return { markdown: lines.join('\n'), table: `${date}, ${machineLine}\n\n${table}` };
}
