import type { ChatRunner } from "./chat.js";
import type { GenerationOwner } from "./passModel.js";

export interface ChatLease<R = ChatRunner> {
  readonly runner: R;
  release(): void;
}

interface Slot<R> {
  readonly runner: R;
  /** The conversation or task this sequence last served: what its evaluated tokens are a prefix of. */
  key: string | undefined;
  /** When it was last leased, in leases: the idle sequence with the smallest is reused first. */
  lastLeased: number;
  leasedBy: GenerationOwner["kind"] | undefined;
}

/**
 * Chat sequences kept warm per conversation: each recently active channel keeps its own sequence, whose evaluated
 * tokens the next turn reuses. A sequence is leased to one generation at a time, so channels generate side by
 * side on their own sequences; an idle channel's sequence goes to a new one, least recently used first.
 *
 * The two kinds of generation lease differently:
 * - A conversation waits for its own sequence while that one is generating: its turns follow each other on it,
 *   and since the scheduler tries its queue in order, a channel's turns start in the order they came.
 * - A text task (/summarize, /keywords) takes any free sequence, preferring one it warmed before. A warm task
 *   saves only its instructions' evaluation (a hundred tokens or so), which is worth less than a member waiting,
 *   so two tasks never queue behind each other for one sequence. And text tasks together hold all sequences but
 *   one (when there are two or more): a mention always finds one that no task holds, so a task, however long it
 *   generates, never holds a mention back. Tasks beyond that wait their turn; their member sees "thinking…".
 */
export class ChatPool<R = ChatRunner> {
  private readonly slots: Array<Slot<R>>;
  private leases = 0;
  /** How many sequences text tasks may hold at once: all but one, for conversations. */
  private readonly taskLimit: number;

  constructor(runners: readonly R[]) {
    if (runners.length === 0) throw new Error("the chat pool needs at least one sequence");
    this.slots = runners.map((runner) => ({ runner, key: undefined, lastLeased: 0, leasedBy: undefined }));
    this.taskLimit = Math.max(1, runners.length - 1);
  }

  get size(): number {
    return this.slots.length;
  }

  /** Any runner, for what every runner shares (the chat wrapper). */
  get any(): R {
    const [first] = this.slots;
    if (!first) throw new Error("the chat pool has no sequences");
    return first.runner;
  }

  /**
   * Leases a sequence for `owner` (see the class comment for how conversations and tasks differ), or returns
   * undefined while it must wait. Among free sequences, a warm one comes first, then one never used, then the
   * least recently used.
   */
  tryLease(owner: GenerationOwner): ChatLease<R> | undefined {
    // Kept apart by kind: a task's name never matches a channel's key.
    const key = `${owner.kind}:${owner.key}`;
    const slot = owner.kind === "conversation" ? this.forConversation(key) : this.forTask(key);
    if (!slot) return undefined;
    slot.key = key;
    slot.lastLeased = ++this.leases;
    slot.leasedBy = owner.kind;
    let released = false;
    return {
      runner: slot.runner,
      release: () => {
        if (released) return;
        released = true;
        slot.leasedBy = undefined;
      },
    };
  }

  private forConversation(key: string): Slot<R> | undefined {
    const own = this.slots.find((slot) => slot.key === key);
    if (own) return own.leasedBy === undefined ? own : undefined;
    return this.freeSlot();
  }

  private forTask(key: string): Slot<R> | undefined {
    const held = this.slots.filter((slot) => slot.leasedBy === "task").length;
    if (held >= this.taskLimit) return undefined;
    return this.slots.find((slot) => slot.key === key && slot.leasedBy === undefined) ?? this.freeSlot();
  }

  /** A sequence no one is generating on: one never used, else the least recently leased. */
  private freeSlot(): Slot<R> | undefined {
    let best: Slot<R> | undefined;
    for (const slot of this.slots) {
      if (slot.leasedBy !== undefined) continue;
      if (slot.key === undefined) return slot;
      if (!best || slot.lastLeased < best.lastLeased) best = slot;
    }
    return best;
  }
}
