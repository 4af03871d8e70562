// Runs a fixture script of __tests__/interop with this very Node binary, for ESM-only libraries
// (jose, openid-client) that jest's CommonJS runtime cannot load.

import { execFile } from 'node:child_process';
import path from 'node:path';

export const FIXTURES = path.join(__dirname, '..', 'interop');

/** Resolves with what the script printed on stdout, trimmed; rejects with its stderr on failure. */
export function runNodeScript(script: string, args: readonly string[], env: Record<string, string>, timeout = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [path.join(FIXTURES, script), ...args], { timeout, env: { ...process.env, ...env }, cwd: FIXTURES }, (error, stdout, stderr) => {
      if (error !== null) return reject(new Error(`${script} failed (${error.message})\nstdout: ${stdout}\nstderr: ${stderr}`));
      resolve(stdout.trim());
    });
  });
}
