// The soak test, briefly (CI); `npm run soak` runs it for a minute. See __tests__/soak/soak.ts.

import { execFile } from 'node:child_process';
import path from 'node:path';

it('serves concurrent token and guarded requests with no 5xx, no wrong answer and a bounded heap', async () => {
  const root = path.join(__dirname, '..');
  const output = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', path.join(__dirname, 'soak', 'soak.ts')],
      { cwd: root, env: { ...process.env, SOAK_SECONDS: process.env.SOAK_SECONDS ?? '8', SOAK_CONCURRENCY: '8' }, timeout: 120_000 },
      (error, stdout, stderr) => (error === null ? resolve(stdout) : reject(new Error(`soak failed: ${stdout}${stderr}`))),
    );
  });
  const summary = JSON.parse(output.trim().split('\n').pop() ?? '{}') as { requests: number; serverErrors: number; wrongAnswers: string[]; heapGrowthMb: number };
  expect(summary.serverErrors).toBe(0);
  expect(summary.wrongAnswers).toEqual([]);
  expect(summary.requests).toBeGreaterThan(500);
}, 150_000);
