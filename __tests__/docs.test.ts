// The documentation cannot rot: its code blocks type-check against lib/, its links resolve, every
// ECC_* warning is explained, and the two minimal examples answer the README's curl session.

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { closedPort } from './support/ports.js';

const ROOT = join(__dirname, '..');
const MARKDOWN = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).sort().map((name) => `docs/${name}`)];
const LANGUAGES = new Set(['ts', 'typescript', 'js', 'javascript']);

interface Block {
  readonly file: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly lang: string;
  readonly code: string;
  /** The HTML comment right before the fence, if any: `fragment`, `file: <path>`, `curl-session`. */
  readonly marker: string | undefined;
}

function codeBlocks(file: string): Block[] {
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i] ?? '');
    if (open === null) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i] ?? ''); i++) body.push(lines[i] ?? '');
    const previous = start > 0 ? /^<!--\s*(.*?)\s*-->$/.exec(lines[start - 1] ?? '') : null;
    blocks.push({ file, line: start + 1, lang: open[1] ?? '', code: `${body.join('\n')}\n`, marker: previous?.[1] });
  }
  return blocks;
}

const ALL_BLOCKS = MARKDOWN.flatMap(codeBlocks);

/**
 * What a block marked `<!-- fragment -->` may use without declaring it: the package's exports and
 * the usual variables of an app. Only the names the fragment does not declare itself are added.
 */
const PRELUDE: Readonly<Record<string, string>> = {
  express: "import express from 'express';",
  fs: "import fs from 'node:fs';",
  readFileSync: "import { readFileSync } from 'node:fs';",
  ...Object.fromEntries(
    ['issuer', 'authenticate', 'requireScope', 'requireAnyScope', 'hashSecret', 'generateClientSecret', 'MemoryClientStore', 'MemoryRevocationStore',
      'MemoryReplayCache', 'OAuthError', 'ConfigurationError', 'sendError', 'environmentDefaults', 'tokenClient', 'TokenRequestError', 'protectedResource']
      .map((name) => [name, `import { ${name} } from 'express-client-credentials';`]),
  ),
  ...Object.fromEntries(
    ['ClientRecord', 'ClientStore', 'RevocationStore', 'ReplayCache', 'AuditEvent', 'AuthInfo', 'Issuer', 'IssuerOptions', 'SigningKeyInput']
      .map((name) => [name, `import type { ${name} } from 'express-client-credentials';`]),
  ),
  app: "declare const app: import('express').Express;",
  api: "declare const api: import('express').Express;",
  handler: "declare const handler: import('express').RequestHandler;",
  mcpHandler: "declare const mcpHandler: import('express').RequestHandler;",
  clients: "declare const clients: import('express-client-credentials').ClientRecord[];",
  signingKey: "declare const signingKey: import('express-client-credentials').SigningKeyInput;",
  tokens: "declare const tokens: import('express-client-credentials').Issuer;",
  pool: "declare const pool: import('pg').Pool;",
  apiPool: "declare const apiPool: import('pg').Pool;",
  clientSecret: 'declare const clientSecret: string;',
  jwksUri: 'declare const jwksUri: string;',
};

/** Names a block declares at its top level (imports, variables, functions, classes, types). */
function declaredNames(code: string): Set<string> {
  const source = ts.createSourceFile('block.mts', code, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
  const names = new Set<string>();
  const addBinding = (name: ts.BindingName): void => {
    if (ts.isIdentifier(name)) names.add(name.text);
    else for (const element of name.elements) if (!ts.isOmittedExpression(element)) addBinding(element.name);
  };
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement) && statement.importClause !== undefined) {
      const clause = statement.importClause;
      if (clause.name !== undefined) names.add(clause.name.text);
      const bindings = clause.namedBindings;
      if (bindings !== undefined && ts.isNamespaceImport(bindings)) names.add(bindings.name.text);
      if (bindings !== undefined && ts.isNamedImports(bindings)) for (const element of bindings.elements) names.add(element.name.text);
    } else if (ts.isVariableStatement(statement)) {
      for (const declaration of statement.declarationList.declarations) addBinding(declaration.name);
    } else if ((ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement) || ts.isInterfaceDeclaration(statement) || ts.isTypeAliasDeclaration(statement)) && statement.name !== undefined) {
      names.add(statement.name.text);
    }
  }
  return names;
}

interface VirtualFile {
  readonly block: Block;
  readonly path: string;
  readonly text: string;
  /** Lines added before the block (the prelude), to report diagnostics at the block's own lines. */
  readonly offset: number;
}

function virtualFile(block: Block): VirtualFile {
  const javascript = block.lang === 'js' || block.lang === 'javascript';
  const esm = /^\s*(import|export)\s/m.test(block.code);
  // .mts/.mjs are ES modules whatever package.json says (top-level await allowed); .cjs is CommonJS.
  const ext = javascript ? (esm ? 'mjs' : 'cjs') : esm || block.marker === 'fragment' ? 'mts' : 'cts';
  const name = `${block.file.replace(/[^A-Za-z0-9]+/g, '-')}-line-${block.line}.${ext}`;
  let prelude: string[] = [];
  if (block.marker === 'fragment') {
    const declared = declaredNames(block.code);
    prelude = Object.entries(PRELUDE).filter(([name]) => !declared.has(name)).map(([, line]) => line);
  }
  // Every block is a module of its own, so that blocks do not see each other's names.
  const text = `${prelude.join('\n')}\n${block.code}\nexport {};\n`;
  return { block, path: join(ROOT, '__docs_blocks__', name), text, offset: prelude.length + 1 };
}

const BASE_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.Node16,
  moduleResolution: ts.ModuleResolutionKind.Node16,
  lib: ['lib.es2022.d.ts'],
  types: ['node', 'jest'],
  esModuleInterop: true,
  skipLibCheck: true,
  noEmit: true,
  allowJs: true,
  checkJs: true,
  baseUrl: ROOT,
  paths: {
    'express-client-credentials': ['./lib/index.ts'],
    'express-client-credentials/testing': ['./lib/testing.ts'],
    'express-client-credentials/client': ['./lib/client.ts'],
    'express-client-credentials/redis': ['./lib/redis.ts'],
    'express-client-credentials/postgres': ['./lib/postgres.ts'],
  },
};

/**
 * Type-checks the files in one program and returns the messages for each block, at its own lines.
 * TypeScript blocks get the project's strictness; JavaScript blocks the checks a `// @ts-check`
 * user gets (wrong names, arguments and option keys), not strict null checks.
 */
function typeCheck(files: readonly VirtualFile[], options: ts.CompilerOptions): Map<VirtualFile, string[]> {
  const byPath = new Map(files.map((file) => [file.path, file]));
  const host = ts.createCompilerHost(options);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (path) => byPath.has(path) || fileExists(path);
  host.readFile = (path) => byPath.get(path)?.text ?? readFile(path);
  host.getSourceFile = (path, language, ...rest) => {
    const file = byPath.get(path);
    return file === undefined ? getSourceFile(path, language, ...rest) : ts.createSourceFile(path, file.text, language, true);
  };
  const program = ts.createProgram([...byPath.keys()], options, host);
  const messages = new Map<VirtualFile, string[]>();
  for (const file of files) {
    const source = program.getSourceFile(file.path);
    if (source === undefined) throw new Error(`no source for ${file.path}`);
    const diagnostics = [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)];
    messages.set(file, diagnostics.map((diagnostic) => {
      const line = diagnostic.start === undefined ? 0 : source.getLineAndCharacterOfPosition(diagnostic.start).line - file.offset;
      return `${file.block.file}:${file.block.line + 1 + line}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`;
    }));
  }
  return messages;
}

describe('the code blocks of README.md and docs/', () => {
  let results: Map<VirtualFile, string[]>;

  beforeAll(() => {
    const files = ALL_BLOCKS.filter((block) => LANGUAGES.has(block.lang)).map(virtualFile);
    const isJs = (file: VirtualFile): boolean => /\.[cm]js$/.test(file.path);
    const strict = { ...BASE_OPTIONS, strict: true, noUncheckedIndexedAccess: true, noImplicitOverride: true };
    results = new Map([...typeCheck(files.filter((file) => !isJs(file)), strict), ...typeCheck(files.filter(isJs), BASE_OPTIONS)]);
  }, 60_000);

  it.each(MARKDOWN)('type-check in %s (```ts and ```js blocks, fragments with the declared prelude)', (file) => {
    const messages = [...results].filter(([virtual]) => virtual.block.file === file).flatMap(([, list]) => list);
    expect(messages).toEqual([]);
  });

  it('have a language on every fence, so none escapes the check by accident', () => {
    const unnamed = ALL_BLOCKS.filter((block) => block.lang === '').map((block) => `${block.file}:${block.line}`);
    expect(unnamed).toEqual([]);
  });

  it('use only the markers this test knows', () => {
    const known = /^(fragment|curl-session|file: \S+)$/;
    const unknown = ALL_BLOCKS.filter((block) => block.marker !== undefined && !known.test(block.marker)).map((block) => `${block.file}:${block.line}: ${block.marker}`);
    expect(unknown).toEqual([]);
  });

  it('marked `file: <path>` are exactly that file, so the README shows the examples the tests run', () => {
    const copies = ALL_BLOCKS.filter((block) => block.marker?.startsWith('file: '));
    expect(copies.length).toBeGreaterThanOrEqual(2);
    for (const block of copies) {
      const path = (block.marker ?? '').slice('file: '.length);
      expect({ where: `${block.file}:${block.line}`, code: block.code }).toEqual({ where: `${block.file}:${block.line}`, code: readFileSync(join(ROOT, path), 'utf8') });
    }
  });

});

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  let fenced = false;
  for (const line of readFileSync(join(ROOT, file), 'utf8').split('\n')) {
    if (/^```/.test(line)) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading === null) continue;
    const base = (heading[1] ?? '').toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  return result;
}

describe('the links of README.md and docs/', () => {
  it.each(MARKDOWN)('in %s point to files and headings that exist', (file) => {
    const text = readFileSync(join(ROOT, file), 'utf8').replace(/```[\s\S]*?```/g, '');
    const broken: string[] = [];
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (target === undefined || /^[a-z]+:/i.test(target)) continue;
      const [path = '', anchor] = target.split('#');
      const resolved = path === '' ? file : relative(ROOT, join(ROOT, dirname(file), path));
      if (!existsSync(join(ROOT, resolved))) broken.push(`${target} (no file ${resolved})`);
      else if (anchor !== undefined && resolved.endsWith('.md') && !anchors(resolved).has(anchor)) broken.push(`${target} (no heading #${anchor} in ${resolved})`);
    }
    expect(broken).toEqual([]);
  });
});

describe('docs/errors.md', () => {
  it('explains every ECC_* warning code that lib/ emits', () => {
    const sources = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : []);
    const codes = new Set(sources(join(ROOT, 'lib')).flatMap((path) => [...readFileSync(path, 'utf8').matchAll(/'(ECC_[A-Z_]+)'/g)].map((match) => match[1])));
    expect(codes.size).toBeGreaterThan(0);
    const page = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8');
    expect([...codes].filter((code) => !page.includes(`### \`${code}\``))).toEqual([]);
  });
});

/** A curl command line of the README, as fetch() arguments. Knows -s, -i, -u, -d, -H and -X. */
function curlRequest(command: string, vars: Readonly<Record<string, string>>, base: string): { url: string; init: RequestInit } {
  const words = [...command.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g)].map(([, double, single, bare]) =>
    (single ?? (double ?? bare ?? '').replace(/\$\{?([A-Z_]+)\}?/g, (_, name: string) => {
      if (vars[name] === undefined) throw new Error(`the curl session uses $${name} before setting it`);
      return vars[name];
    })));
  const headers = new Headers();
  const data: string[] = [];
  let method: string | undefined;
  let url: string | undefined;
  for (let i = 1; i < words.length; i++) {
    const word = words[i] ?? '';
    if (word === '-s' || word === '-i' || word === '-si') continue;
    const value = words[++i] ?? '';
    if (word === '-u') headers.set('Authorization', `Basic ${Buffer.from(value).toString('base64')}`);
    else if (word === '-d') data.push(value);
    else if (word === '-H') headers.set(value.slice(0, value.indexOf(':')), value.slice(value.indexOf(':') + 1).trim());
    else if (word === '-X') method = value;
    else if (!word.startsWith('-')) (url = word), i--;
    else throw new Error(`the README's curl uses ${word}, which this test does not know`);
  }
  if (url === undefined) throw new Error(`no URL in: ${command}`);
  // As curl does: -d joins with & and posts as a form, without encoding.
  if (data.length > 0) headers.set('Content-Type', 'application/x-www-form-urlencoded');
  return {
    url: url.replace('http://127.0.0.1:3000', base),
    init: { method: method ?? (data.length > 0 ? 'POST' : 'GET'), headers, ...(data.length > 0 ? { body: data.join('&') } : {}) },
  };
}

interface SessionStep {
  readonly command: string;
  /** What the README shows the command printing. */
  readonly shown: string[];
  /** A shell assignment before it, such as `TOKEN=…`, taken from the previous answer. */
  readonly assigns: string[];
}

/** The `<!-- curl-session -->` block of the README: `$ curl …` lines, each followed by what it prints. */
function curlSession(): SessionStep[] {
  const block = ALL_BLOCKS.find((candidate) => candidate.file === 'README.md' && candidate.marker === 'curl-session');
  if (block === undefined) throw new Error('README.md has no <!-- curl-session --> block');
  const steps: SessionStep[] = [];
  let assigns: string[] = [];
  for (const line of block.code.split('\n')) {
    const prompt = /^\$ (.*)$/.exec(line);
    if (prompt !== null && /^curl\s/.test(prompt[1] ?? '')) {
      steps.push({ command: prompt[1] ?? '', shown: [], assigns });
      assigns = [];
    } else if (prompt !== null) {
      const assignment = /^([A-Z_]+)=/.exec(prompt[1] ?? '');
      if (assignment !== null) assigns.push(assignment[1] ?? '');
    } else if (line.trim() !== '') {
      steps.at(-1)?.shown.push(line);
    }
  }
  return steps;
}

/** Compares an answer with what the README shows: same keys; values equal unless shown elided (`…`). */
function matchesShown(body: Record<string, unknown>, shown: string): boolean {
  const expected = JSON.parse(shown) as Record<string, unknown>;
  return Object.keys(expected).sort().join() === Object.keys(body).sort().join() &&
    Object.entries(expected).every(([key, value]) => (typeof value === 'string' && value.includes('…') ? typeof body[key] === 'string' : JSON.stringify(body[key]) === JSON.stringify(value)));
}

describe('the minimal examples, run as the README says', () => {
  const started: ChildProcess[] = [];
  let dir: string;
  let secret: string;

  beforeAll(() => {
    if (!existsSync(join(ROOT, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` (jest globalSetup builds it when it is missing or older than lib/)');
    dir = mkdtempSync(join(tmpdir(), 'ecc-docs-'));
    // The README's own steps: a signing key from keygen, a client from create-client.
    const cli = (args: string[]): string => {
      const child = spawnSync(process.execPath, [join(ROOT, 'dist', 'cli.js'), ...args], { cwd: dir, encoding: 'utf8' });
      if (child.status !== 0) throw new Error(`cli ${args[0]} failed: ${child.stderr}`);
      return child.stderr;
    };
    cli(['keygen', '--alg', 'ES256', '--out', 'signing-key.pem']);
    const stderr = cli(['create-client', '--id', 'reports', '--scope', 'read', '--file', 'clients.json']);
    secret = /client_secret: (\S+)/.exec(stderr)?.[1] ?? '';
    expect(secret).not.toBe('');
  });

  afterAll(() => {
    for (const child of started) child.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts an example in the key and clients folder and resolves with its base URL once it listens. */
  async function start(args: string[]): Promise<string> {
    const port = await closedPort();
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), REPORTS_SECRET: secret };
    delete env.OAUTH_ISSUER;
    const child = spawn(process.execPath, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    started.push(child);
    let output = '';
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${args.at(-1)} did not start within 15 s:\n${output}`)), 15_000);
      const read = (chunk: Buffer): void => {
        output += chunk.toString();
        const listening = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
        if (listening !== null) (clearTimeout(timer), resolve(listening[1] ?? ''));
      };
      child.stdout?.on('data', read);
      child.stderr?.on('data', read);
      child.on('exit', (code) => (clearTimeout(timer), reject(new Error(`${args.at(-1)} exited with ${code}:\n${output}`))));
    });
  }

  const examples: [string, () => string[]][] = [
    ['examples/minimal/server.js (CommonJS, inline hashSecret)', () => [join(ROOT, 'examples', 'minimal', 'server.js')]],
    ['examples/minimal-esm/server.mts (ESM TypeScript, clients file)', () => ['--import', pathToFileURL(require.resolve('tsx')).href, join(ROOT, 'examples', 'minimal-esm', 'server.mts')]],
  ];

  it.each(examples)('%s issues tokens with Basic and with body credentials and serves /reports, as the curl session shows', async (_name, args) => {
    const base = await start(args());
    const vars: Record<string, string> = { SECRET: secret };
    const steps = curlSession();
    expect(steps.map((step) => step.command).join('\n')).toMatch(/-u "?reports:\$SECRET/);
    expect(steps.map((step) => step.command).join('\n')).toMatch(/-d "?client_secret=\$SECRET/);
    let last: Record<string, unknown> = {};
    for (const step of steps) {
      if (step.assigns.includes('TOKEN')) vars.TOKEN = String(last.access_token);
      const { url, init } = curlRequest(step.command, vars, base);
      const response = await fetch(url, init);
      last = (await response.json()) as Record<string, unknown>;
      const status = /^HTTP\/1\.1 (\d{3})/.exec(step.shown[0] ?? '')?.[1];
      expect({ command: step.command, status: response.status }).toEqual({ command: step.command, status: Number(status ?? 200) });
      const json = step.shown.find((line) => line.startsWith('{'));
      if (json !== undefined) expect({ command: step.command, body: last, matches: matchesShown(last, json) }).toEqual({ command: step.command, body: last, matches: true });
      if (new URL(url).pathname === '/token' && response.status === 200) {
        expect(last).toMatchObject({ token_type: 'Bearer', access_token: expect.stringMatching(/^eyJ/) });
      }
    }
  });

  it('the package resolves by its own name from the repository root, through the exports map', () => {
    expect(execFileSync(process.execPath, ['-e', "console.log(typeof require('express-client-credentials').issuer)"], { cwd: ROOT, encoding: 'utf8' }).trim()).toBe('function');
  });
});
