/**
 * Runs work per key (a channel) in the order it was started: each piece waits until the previous one for the same
 * key has settled. discord.js emits a channel's messages in gateway order; a handler that awaits (a settings read)
 * before it takes its place in a queue would otherwise let a later message overtake an earlier one.
 */
export class ArrivalOrder {
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(work);
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
}
