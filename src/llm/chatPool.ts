import type { ChatRunner } from "./chat.js";

export interface ChatLease {
  readonly runner: ChatRunner;
  release(): void;
}

/**
 * Chat sequences kept warm per conversation: each recently active channel keeps its own sequence, whose evaluated
 * tokens the next turn reuses. A sequence is leased to one generation at a time, so channels generate side by
 * side on their own sequences; an idle channel's sequence goes to a new one, least recently used first.
 */
export class ChatPool {
  /** Which conversation each sequence last served, in recency order (Map keeps insertion order). */
  private readonly byKey = new Map<string, ChatRunner>();
  private readonly unused: ChatRunner[];
  private readonly leased = new Set<ChatRunner>();

  constructor(private readonly runners: readonly ChatRunner[]) {
    if (runners.length === 0) throw new Error("the chat pool needs at least one sequence");
    this.unused = [...runners];
  }

  get size(): number {
    return this.runners.length;
  }

  /** Any runner, for what every runner shares (the chat wrapper). */
  get any(): ChatRunner {
    const [first] = this.runners;
    if (!first) throw new Error("the chat pool has no sequences");
    return first;
  }

  /**
   * Leases the sequence that last served `key`, else an unused one, else the least recently used idle one; or
   * returns undefined while that conversation's sequence, or every sequence, is generating.
   */
  tryLease(key: string): ChatLease | undefined {
    let runner = this.byKey.get(key);
    if (runner && this.leased.has(runner)) return undefined;
    runner ??= this.unused.pop() ?? this.takeIdle();
    if (!runner) return undefined;
    const leasedRunner = runner;
    this.byKey.delete(key);
    this.byKey.set(key, leasedRunner);
    this.leased.add(leasedRunner);
    let released = false;
    return {
      runner: leasedRunner,
      release: () => {
        if (released) return;
        released = true;
        this.leased.delete(leasedRunner);
      },
    };
  }

  private takeIdle(): ChatRunner | undefined {
    for (const [key, runner] of this.byKey) {
      if (this.leased.has(runner)) continue;
      this.byKey.delete(key);
      return runner;
    }
    return undefined;
  }
}
