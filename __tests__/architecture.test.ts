// The layers point one way: adapters (lib/express) and stores (lib/stores) depend on the core,
// never the core on them, so that the protocol can be read, tested and reused without Express.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const CORE = join(__dirname, '..', 'lib', 'core');

/** Every module specifier a file imports or re-exports, static or dynamic. */
function importsOf(source: string): string[] {
  const found = [...source.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]/g), ...source.matchAll(/(?:import|require)\(\s*['"]([^'"]+)['"]\s*\)/g)];
  return found.map((match) => match[1]!);
}

describe('the core depends on no adapter and no store', () => {
  const files = readdirSync(CORE).filter((name) => name.endsWith('.ts'));

  it.each(files)('lib/core/%s imports neither express nor lib/express nor lib/stores', (name) => {
    const forbidden = importsOf(readFileSync(join(CORE, name), 'utf8')).filter(
      (specifier) => /^express(\/|$)/.test(specifier) || specifier.startsWith('../express/') || specifier.startsWith('../stores/'),
    );
    expect(forbidden).toEqual([]);
  });

  it('finds the imports it checks, so that it cannot pass by reading nothing', () => {
    expect(importsOf("import type { Request } from 'express';\nexport { a } from '../stores/x.js';\nconst m = require('../express/y.js');")).toEqual(['express', '../stores/x.js', '../express/y.js']);
    expect(files.length).toBeGreaterThan(10);
  });
});
