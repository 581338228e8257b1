/**
 * Runs work one piece at a time per key, in the order the pieces were started: each waits until the previous one
 * for its key has settled, and a failure of one never blocks the next (its caller receives it). A piece takes its
 * place in line synchronously, when `run` is called, so a caller that started earlier is never overtaken.
 *
 * The users: a SQLite file has one owning process, so serialising that process's own read-modify-write updates of
 * a key keeps any of them from being lost; and discord.js emits a channel's messages in gateway order, which a
 * handler that awaits before it takes its place in a queue would otherwise lose.
 */
export class KeyedSerialiser {
  /** Per key, the last piece started, settled either way; gone once nothing waits for that key. */
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    // A tail never rejects, so the previous piece's failure is not passed on to this one.
    const result = (this.tails.get(key) ?? Promise.resolve()).then(work);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /**
   * Resolves once every piece started before this call, for these keys, has settled (never rejects: each piece's
   * failure went to its own caller). A reader waits here for the writes it must see.
   */
  async settled(keys: Iterable<string>): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const key of keys) {
      const tail = this.tails.get(key);
      if (tail) pending.push(tail);
    }
    await Promise.all(pending);
  }

  /** Keys with work started and not yet settled. */
  get busyKeys(): number {
    return this.tails.size;
  }
}
