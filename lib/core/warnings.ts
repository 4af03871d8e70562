// Warnings about the app's setup: each once per process, however many issuers or guards say it.

const warned = new Set<string>();

/** `process.emitWarning` the first time this code comes with this message in this process. */
export function warnOnce(code: string, message: string): void {
  const key = `${code} ${message}`;
  if (warned.has(key)) return;
  warned.add(key);
  process.emitWarning(message, { code });
}

/** Forgets which codes were said, so that a test can see its warning again. */
export function forgetWarnings(): void {
  warned.clear();
}
