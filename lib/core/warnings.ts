// Warnings about the app's setup: each code once per process, however many issuers or guards say it.

const warned = new Set<string>();

/** `process.emitWarning` the first time a code is seen in this process. */
export function warnOnce(code: string, message: string): void {
  if (warned.has(code)) return;
  warned.add(code);
  process.emitWarning(message, { code });
}

/** Forgets which codes were said, so that a test can see its warning again. */
export function forgetWarnings(): void {
  warned.clear();
}
