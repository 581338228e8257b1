/** Work that did not settle within its deadline. The work itself goes on; only its answer is no longer awaited. */
export class DeadlineExceeded extends Error {
  override readonly name = "DeadlineExceeded";
  constructor(readonly deadlineMs: number) {
    super(`no answer within ${deadlineMs} ms`);
  }
}

export interface DeadlineOptions {
  /**
   * Whether the deadline's timer alone keeps the process alive (Node's default). A lookup that only saves work
   * (a cache) should not hold up a process that is ending; a read that an answer waits on may.
   */
  readonly keepsProcessAlive?: boolean;
}

/**
 * Settles as `work` does, or rejects with `DeadlineExceeded` once `deadlineMs` have passed. Work that loses the
 * race may still settle later: its outcome then matters to no one, and a failure of it is no unhandled rejection.
 */
export function withinDeadline<T>(
  work: Promise<T>,
  deadlineMs: number,
  options: DeadlineOptions = {},
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceeded(deadlineMs)), deadlineMs);
    if (options.keepsProcessAlive === false) timer.unref();
  });
  const stop = () => clearTimeout(timer);
  work.then(stop, stop);
  return Promise.race([work, late]);
}
