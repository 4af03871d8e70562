// jest globalSetup: builds dist/ when it is missing or older than lib/ (the suites that run the
// package as users get it, by its name or its CLI, need it), then probes Redis and PostgreSQL once
// per run; the store suites read the outcome.

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { probeServices } from './service-probe';

const ROOT = join(__dirname, '..', '..');

function newestSource(dir: string): number {
  return Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs;
  }));
}

export default async function globalSetup(): Promise<void> {
  const built = join(ROOT, 'dist', 'index.js');
  if (!existsSync(built) || statSync(built).mtimeMs < newestSource(join(ROOT, 'lib'))) {
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  }
  await probeServices();
}
