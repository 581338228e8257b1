import { z } from "zod";
import { errorMessage } from "../errors.js";
import type { Logger } from "../logger.js";
import type { TurnLog } from "./turnLog.js";

export interface HistoryTurn {
  readonly role: "user" | "assistant";
  readonly text: string;
  /** The speaker's display name, for user turns. */
  readonly author?: string;
  readonly at: number;
}

const turnSchema = z.object({
  role: z.enum(["user", "assistant"]),
  text: z.string(),
  author: z.string().optional(),
  at: z.number(),
});
const historySchema = z.array(turnSchema);

export interface HistoryOptions {
  /** Turns kept per channel. */
  readonly maxTurns: number;
  /** Turns held for the store while it is unreachable; beyond this the oldest are dropped, and counted. */
  readonly bufferTurns?: number;
  /** Channels whose recent turns the process remembers, to answer from while the store is unreachable. */
  readonly memoryChannels?: number;
  /** A read slower than this is answered from memory: a locked or hung store must not hold up a reply. */
  readonly readBudgetMs?: number;
  /** How often buffered turns are retried while the store is unreachable. */
  readonly retryMs?: number;
}

interface Buffered {
  readonly channelId: string;
  readonly turns: readonly HistoryTurn[];
}

/**
 * Per-channel conversation turns, newest last, capped at `maxTurns`, validated on the way out. Appends go through
 * the store's turn log, which never loses a turn another writer appended.
 *
 * A store outage costs memory, not answers. While the store cannot be read, a channel's history comes from the
 * turns this process last saw; while it cannot be written, turns wait in a bounded buffer and are written in
 * order once it is back. Neither `get` nor `append` fails because of the store.
 */
export class HistoryStore {
  private readonly options: Required<HistoryOptions>;
  /** Each recently active channel's turns as this process last saw them, most recently used last. */
  private readonly memory = new Map<string, HistoryTurn[]>();
  private readonly buffer: Buffered[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private unreachableSince: number | undefined;
  private dropped = 0;
  private failures = 0;

  constructor(
    private readonly turns: TurnLog,
    options: HistoryOptions,
    private readonly logger: Logger,
  ) {
    this.options = {
      bufferTurns: 2_000,
      memoryChannels: 1_000,
      readBudgetMs: 2_000,
      retryMs: 500,
      ...options,
    };
  }

  /** Reads and writes of the store that failed, since the start. */
  get storeErrors(): number {
    return this.failures;
  }

  /** Turns waiting for the store. */
  get bufferedTurns(): number {
    return this.buffer.reduce((sum, entry) => sum + entry.turns.length, 0);
  }

  async get(channelId: string): Promise<HistoryTurn[]> {
    let stored: HistoryTurn[];
    try {
      stored = this.parse(channelId, await this.withinBudget(this.turns.read(channelId)));
    } catch (error) {
      this.unreachable(error, "read");
      return this.recall(channelId);
    }
    if (this.unreachableSince !== undefined && this.buffer.length === 0) this.reachable(0);
    // What the store holds, then what still waits to be written there.
    const waiting = this.buffer
      .filter((entry) => entry.channelId === channelId)
      .flatMap((entry) => entry.turns);
    const turns = [...stored, ...waiting].slice(-this.options.maxTurns);
    this.remember(channelId, turns);
    return turns;
  }

  /** Appends turns to a channel's history, keeping the newest `maxTurns`. */
  async append(channelId: string, turns: readonly HistoryTurn[]): Promise<void> {
    if (turns.length === 0) return;
    this.remember(channelId, [...this.recall(channelId), ...turns]);
    // Once anything waits, later turns wait behind it: the store receives every channel's turns in order.
    if (this.buffer.length > 0) {
      this.hold(channelId, turns);
      return;
    }
    try {
      await this.turns.append(channelId, turns, this.options.maxTurns);
    } catch (error) {
      this.unreachable(error, "write");
      this.hold(channelId, turns);
    }
  }

  /** Forgets a channel here and in the store; unlike reads and writes, this fails when the store does. */
  async clear(channelId: string): Promise<void> {
    await this.turns.clear(channelId);
    this.memory.delete(channelId);
    for (let index = this.buffer.length - 1; index >= 0; index--) {
      if (this.buffer[index]?.channelId === channelId) this.buffer.splice(index, 1);
    }
  }

  /** Tries once more to write what waits, then stops retrying; what could not be written is counted in the log. */
  async close(): Promise<void> {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.flush();
    if (this.buffer.length > 0) {
      this.logger.warn({ turns: this.bufferedTurns }, "history turns not written: the store is unreachable");
    }
  }

  private parse(channelId: string, raw: unknown[] | undefined): HistoryTurn[] {
    if (raw === undefined) return [];
    const parsed = historySchema.safeParse(raw);
    if (parsed.success) return parsed.data.map(withoutUndefined).slice(-this.options.maxTurns);
    this.logger.warn({ channelId, issues: parsed.error.issues.length }, "ignoring malformed channel history");
    return [];
  }

  private withinBudget<T>(work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${this.options.readBudgetMs} ms`)),
        this.options.readBudgetMs,
      );
    });
    // The read may still settle after losing the race; its outcome no longer matters to anyone.
    work.then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    );
    return Promise.race([work, late]);
  }

  private recall(channelId: string): HistoryTurn[] {
    return [...(this.memory.get(channelId) ?? [])];
  }

  private remember(channelId: string, turns: readonly HistoryTurn[]): void {
    this.memory.delete(channelId);
    this.memory.set(channelId, turns.slice(-this.options.maxTurns));
    for (const oldest of this.memory.keys()) {
      if (this.memory.size <= this.options.memoryChannels) break;
      this.memory.delete(oldest);
    }
  }

  private hold(channelId: string, turns: readonly HistoryTurn[]): void {
    this.buffer.push({ channelId, turns });
    let overflow = this.bufferedTurns - this.options.bufferTurns;
    while (overflow > 0 && this.buffer.length > 0) {
      const oldest = this.buffer.shift();
      const count = oldest?.turns.length ?? 0;
      overflow -= count;
      this.dropped += count;
      this.logger.warn(
        { dropped: count, droppedInAll: this.dropped, bufferTurns: this.options.bufferTurns },
        "history buffer full: the oldest turns waiting for the store were dropped",
      );
    }
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined || this.buffer.length === 0) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.flush().then(() => this.scheduleRetry());
    }, this.options.retryMs);
    // A retry never keeps the process alive on its own.
    this.retryTimer.unref();
  }

  /** Writes what waits, oldest first, and stops at the first failure. */
  private flush(): Promise<void> {
    this.flushing ??= (async () => {
      let written = 0;
      try {
        for (;;) {
          const next = this.buffer[0];
          if (!next) break;
          await this.turns.append(next.channelId, next.turns, this.options.maxTurns);
          this.buffer.shift();
          written += next.turns.length;
        }
        if (written > 0 || this.unreachableSince !== undefined) this.reachable(written);
      } catch (error) {
        this.unreachable(error, "write");
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }

  private unreachable(error: unknown, operation: "read" | "write"): void {
    this.failures++;
    if (this.unreachableSince !== undefined) return;
    this.unreachableSince = Date.now();
    this.logger.warn(
      { err: errorMessage(error), operation },
      "store unreachable: answering from the history this process holds, and buffering new turns",
    );
  }

  private reachable(written: number): void {
    const downMs = this.unreachableSince === undefined ? 0 : Date.now() - this.unreachableSince;
    this.unreachableSince = undefined;
    this.logger.info(
      { written, downMs, dropped: this.dropped },
      "store reachable again: buffered history written",
    );
  }
}

function withoutUndefined(turn: z.infer<typeof turnSchema>): HistoryTurn {
  return turn.author === undefined
    ? { role: turn.role, text: turn.text, at: turn.at }
    : { role: turn.role, text: turn.text, author: turn.author, at: turn.at };
}
