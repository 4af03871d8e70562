// Small statistics for the report: medians of a handful of rounds.

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export const min = (values: readonly number[]): number => (values.length === 0 ? Number.NaN : Math.min(...values));
export const max = (values: readonly number[]): number => (values.length === 0 ? Number.NaN : Math.max(...values));
