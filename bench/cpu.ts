// CPU accounting from /proc (Linux; elsewhere every figure is undefined): how busy the server child
// was during a run, and how much CPU processes other than the benchmark's took meanwhile, since a
// shared machine (a test suite running next to the benchmark) skews a run without telling.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

const ticksPerSecond = (() => {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const value = Number(out.stdout?.trim());
  return Number.isFinite(value) && value > 0 ? value : 100;
})();

/** Busy ticks of the whole machine: user, nice, system, irq, softirq, steal. */
function machineTicks(): number | undefined {
  try {
    const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
    return user + nice + system + irq + softirq + steal;
  } catch {
    return undefined;
  }
}

/** utime + stime of a process, plus those of its reaped children when asked (wrk under the load child). */
function processTicks(pid: number, withChildren: boolean): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    // Fields 14–17 of proc(5), counted from field 3 (state) here.
    const [utime = 0, stime = 0, cutime = 0, cstime = 0] = fields.slice(11, 15);
    return utime + stime + (withChildren ? cutime + cstime : 0);
  } catch {
    return undefined;
  }
}

export interface CpuWindow {
  /** Cores used by the server process over the window (1 = one core fully busy). */
  readonly serverCores: number | undefined;
  /** Cores used by everything that is not the benchmark. */
  readonly foreignCores: number | undefined;
}

/** Starts a window; `end()` returns what each party used since. `own` are the benchmark's other processes. */
export function cpuWindow(server: number | undefined, own: readonly number[]): { end: () => CpuWindow } {
  const started = performance.now();
  const machine0 = machineTicks();
  const server0 = server === undefined ? undefined : processTicks(server, false);
  const own0 = [process.pid, ...own].map((pid) => processTicks(pid, pid !== process.pid));
  return {
    end: () => {
      const seconds = (performance.now() - started) / 1000;
      const machine1 = machineTicks();
      const server1 = server === undefined ? undefined : processTicks(server, false);
      const own1 = [process.pid, ...own].map((pid) => processTicks(pid, pid !== process.pid));
      const serverTicks = server0 !== undefined && server1 !== undefined ? server1 - server0 : undefined;
      let ownTicks = serverTicks ?? 0;
      for (let i = 0; i < own0.length; i += 1) ownTicks += (own1[i] ?? 0) - (own0[i] ?? 0);
      const toCores = (ticks: number): number => ticks / ticksPerSecond / seconds;
      return {
        serverCores: serverTicks === undefined ? undefined : toCores(serverTicks),
        foreignCores: machine0 === undefined || machine1 === undefined ? undefined : Math.max(0, toCores(machine1 - machine0 - ownTicks)),
      };
    },
  };
}
