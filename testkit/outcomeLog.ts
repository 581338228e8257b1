import type { OutcomeKind, PortableOutcome } from "../src/outcomes/outcomes.js";

/** An outcome as a test reads it: in-process, or after it crossed IPC from a child process. */
export type SeenOutcome = PortableOutcome;
export type SeenOutcomeOf<K extends OutcomeKind> = Extract<SeenOutcome, { kind: K }>;

/** What an outcome must hold to match: some of its fields, or a predicate. */
export type OutcomeMatch<K extends OutcomeKind> =
  | Partial<SeenOutcomeOf<K>>
  | ((outcome: SeenOutcomeOf<K>) => boolean);

interface Waiter {
  readonly test: (outcome: SeenOutcome) => boolean;
  readonly resolve: () => void;
}

/**
 * Every outcome the bot under test told, in order, and waits on them. A wait resolves on the outcome's own arrival
 * (or at once when it already came), never on a timer; its timeout is the failure, naming what came instead.
 */
export class OutcomeLog {
  readonly seen: SeenOutcome[] = [];
  private readonly waiters = new Set<Waiter>();

  /** Subscribe this to the bot's Outcomes, or feed it what a child process sends over IPC. */
  readonly record = (outcome: SeenOutcome): void => {
    this.seen.push(outcome);
    for (const waiter of this.waiters) if (waiter.test(outcome)) waiter.resolve();
  };

  /** Every outcome of this kind so far that matches. */
  all<K extends OutcomeKind>(kind: K, match: OutcomeMatch<K> = {}): Array<SeenOutcomeOf<K>> {
    const test = matcher(kind, match);
    return this.seen.filter(test) as Array<SeenOutcomeOf<K>>;
  }

  /** Every outcome about one Discord message so far. */
  about(messageId: string): SeenOutcome[] {
    return this.seen.filter((outcome) => "messageId" in outcome && outcome.messageId === messageId);
  }

  /**
   * Waits until `count` outcomes of this kind match (counting those already seen), and returns the matches in
   * order. Fails after `timeoutMs` with what was seen.
   */
  async waitFor<K extends OutcomeKind>(
    kind: K,
    match: OutcomeMatch<K> = {},
    options: { readonly count?: number; readonly timeoutMs?: number } = {},
  ): Promise<Array<SeenOutcomeOf<K>>> {
    const { count = 1, timeoutMs = 20_000 } = options;
    const test = matcher(kind, match);
    const enough = () => this.seen.filter(test).length >= count;
    if (!enough()) {
      await new Promise<void>((resolve, reject) => {
        const waiter: Waiter = {
          test: (outcome) => test(outcome) && enough(),
          resolve: () => {
            clearTimeout(timer);
            this.waiters.delete(waiter);
            resolve();
          },
        };
        const timer = setTimeout(() => {
          this.waiters.delete(waiter);
          reject(new Error(this.failure(kind, match, count, timeoutMs)));
        }, timeoutMs);
        this.waiters.add(waiter);
      });
    }
    return this.all(kind, match);
  }

  /** Waits for the first outcome of this kind that matches, and returns it. */
  async next<K extends OutcomeKind>(
    kind: K,
    match: OutcomeMatch<K> = {},
    timeoutMs = 20_000,
  ): Promise<SeenOutcomeOf<K>> {
    const [first] = await this.waitFor(kind, match, { timeoutMs });
    if (!first) throw new Error(`no ${kind} outcome`);
    return first;
  }

  private failure<K extends OutcomeKind>(kind: K, match: OutcomeMatch<K>, count: number, ms: number): string {
    const wanted = typeof match === "function" ? "matching the predicate" : JSON.stringify(match);
    const recent = this.seen.slice(-12).map((outcome) => JSON.stringify(outcome, errorsAsText));
    return `no ${count}× "${kind}" outcome ${wanted} in ${ms} ms; the last outcomes seen:\n${recent.join("\n")}`;
  }
}

function matcher<K extends OutcomeKind>(kind: K, match: OutcomeMatch<K>): (outcome: SeenOutcome) => boolean {
  if (typeof match === "function") {
    return (outcome) => outcome.kind === kind && match(outcome as SeenOutcomeOf<K>);
  }
  const fields = Object.entries(match);
  return (outcome) =>
    outcome.kind === kind &&
    fields.every(([key, value]) => (outcome as unknown as Record<string, unknown>)[key] === value);
}

function errorsAsText(_key: string, value: unknown): unknown {
  return value instanceof Error ? `${value.name}: ${value.message}` : value;
}
