/**
 * Waiting on a condition, never on a fixed time: `eventually` polls `probe` until it returns a
 * value other than undefined, and fails naming `what` if the deadline passes first. The deadline
 * is a ceiling for a stuck test, not a timing assertion; runs in Node and in workerd alike.
 */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  { timeoutMs = 15_000, intervalMs = 25 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
