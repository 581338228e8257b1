/**
 * Polls `condition` until it holds; once `timeoutMs` has passed, throws with `failure()` (what was seen instead).
 * Tests wait on an event's own outcome with it, never on a fixed sleep.
 */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  options: {
    readonly timeoutMs?: number;
    readonly intervalMs?: number;
    readonly failure?: () => string;
  } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(options.failure?.() ?? `not true within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 20));
  }
}
