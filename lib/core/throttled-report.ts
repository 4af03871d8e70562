// Store failures come with every request while a store is down: one line per kind of failure and
// interval, with a count, keeps them visible without drowning the log (or the disk) in stacks.

/**
 * Returns `report(kind, message)`: the first failure of a kind is passed on at once, later ones
 * within `intervalMs` are counted and summed up in the next line of that kind.
 */
export function throttledReporter(write: (message: string) => void, intervalMs = 10_000, now: () => number = Date.now) {
  const kinds = new Map<string, { until: number; suppressed: number }>();
  return function report(kind: string, message: string): void {
    const time = now();
    const state = kinds.get(kind);
    if (state !== undefined && time < state.until) {
      state.suppressed += 1;
      return;
    }
    const more = state !== undefined && state.suppressed > 0 ? ` (and ${state.suppressed} more in the last ${Math.round((time - state.until + intervalMs) / 1000)} s)` : '';
    kinds.set(kind, { until: time + intervalMs, suppressed: 0 });
    write(`${message}${more}`);
  };
}
