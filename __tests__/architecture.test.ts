// The layers point one way: adapters (lib/express) and stores (lib/stores) depend on the core,
// never the core on them, so that the protocol can be read, tested and reused without Express.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';

const CORE = join(__dirname, '..', 'lib', 'core');

/** The packages the core may use besides Node's own modules: the JWS library and bcrypt. */
const CORE_PACKAGES = ['jsonwebtoken', 'bcryptjs'];

/** Every module a file imports, re-exports, imports for its side effects or requires, as TypeScript reads them. */
function importsOf(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((file) => file.fileName);
}

/** A core module may import only its siblings, Node's modules, and CORE_PACKAGES. */
const allowed = (specifier: string): boolean =>
  (specifier.startsWith('./') && !specifier.includes('/', 2)) || specifier.startsWith('node:') || CORE_PACKAGES.includes(specifier);

describe('the core depends on no adapter, no store and no entry point', () => {
  const files = readdirSync(CORE).filter((name) => name.endsWith('.ts'));

  it.each(files)('lib/core/%s imports only lib/core, node: modules, jsonwebtoken and bcryptjs', (name) => {
    expect(importsOf(readFileSync(join(CORE, name), 'utf8')).filter((specifier) => !allowed(specifier))).toEqual([]);
  });

  it('sees every form of import, so that it cannot pass by reading nothing', () => {
    const sample = [
      "import type { Request } from 'express'; import b from '../stores/y.js';",
      "/* a comment */ export { a } from '../index.js';",
      "import '../express/augment-request.js';",
      "const m = require('../env.js');",
      "const redis = await import('redis');",
    ].join('\n');
    expect(importsOf(sample).filter((specifier) => !allowed(specifier))).toEqual(['express', '../stores/y.js', '../index.js', '../express/augment-request.js', '../env.js', 'redis']);
    expect(files.length).toBeGreaterThan(10);
  });
});
