import { withinDeadline } from "../platform/deadline.js";
import type { Logger } from "../platform/logger.js";
import type { ChannelHistory, ChannelWrite, HistoryTurn, TurnFilter } from "./history.js";

export interface ResilienceOptions {
  /** Turns kept per channel. */
  readonly maxTurns: number;
  /** Turns held for the store while it is unreachable; beyond this the oldest are dropped, and counted. */
  readonly bufferTurns: number;
  /** Channels whose recent turns the process remembers, to answer from while the store is unreachable. */
  readonly memoryChannels: number;
  /** A read slower than this is answered from memory: a locked or hung store must not hold up a reply. */
  readonly readBudgetMs: number;
  /** How often buffered turns are retried while the store is unreachable. */
  readonly retryMs: number;
  /** Turns older than this time have expired: what is remembered expires as the stored turns do. */
  readonly cutoff: () => number;
}

/** A write waiting for the store, with whom to tell what a deletion took back of it. */
interface Waiting extends ChannelWrite {
  readonly takenBack?: (drop: TurnFilter) => void;
}

/**
 * A channel history that a store outage costs memory, not answers: a decorator over the stored history. While the
 * store cannot be read, a channel's history comes from the turns this process last saw (a bounded LRU of
 * channels), and a read slower than its budget counts as unreadable. While it cannot be written, turns wait in a
 * bounded buffer, retried on a timer, and are written in order once it is back. Neither `read` nor `write` fails
 * because of the store; `remove` and `clear` do, once they have dropped the turns from what this process holds.
 */
export class ResilientHistory implements ChannelHistory {
  /** Each recently active channel's turns as this process last saw them, most recently used last. */
  private readonly memory = new Map<string, HistoryTurn[]>();
  private readonly buffer: Waiting[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private unreachableSince: number | undefined;
  private dropped = 0;
  private failures = 0;

  constructor(
    private readonly stored: ChannelHistory,
    private readonly options: ResilienceOptions,
    private readonly logger: Logger,
  ) {}

  /** Reads and writes of the store that failed, since the start. */
  get storeErrors(): number {
    return this.failures;
  }

  /** Turns waiting for the store. */
  get bufferedTurns(): number {
    return this.buffer.reduce((sum, entry) => sum + entry.turns.length, 0);
  }

  async read(channelId: string): Promise<HistoryTurn[]> {
    let stored: HistoryTurn[];
    try {
      stored = await withinDeadline(this.stored.read(channelId), this.options.readBudgetMs);
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

  async write(entry: ChannelWrite, takenBack?: (drop: TurnFilter) => void): Promise<void> {
    if (entry.turns.length === 0) return;
    this.remember(entry.channelId, [...this.recall(entry.channelId), ...entry.turns]);
    // Once anything waits, later turns wait behind it: the store receives every channel's turns in order.
    if (this.buffer.length > 0) {
      this.hold(entry, takenBack);
      return;
    }
    try {
      await this.stored.write(entry, this.forgetting(entry.channelId, takenBack));
    } catch (error) {
      this.unreachable(error, "write");
      this.hold(entry, takenBack);
    }
  }

  remove(channelId: string, drop: (turn: unknown) => boolean): Promise<number> {
    this.forgetHere(channelId, drop);
    return this.stored.remove(channelId, drop);
  }

  clear(channelId: string): Promise<void> {
    this.forgetHere(channelId, () => true);
    return this.stored.clear(channelId);
  }

  /** Drops turns from what this process holds in every channel: remembered, and waiting for the store. */
  forgetEverywhere(drop: TurnFilter): void {
    const held = new Set([...this.memory.keys(), ...this.buffer.map((entry) => entry.channelId)]);
    for (const channelId of held) this.forgetHere(channelId, drop);
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

  /** What the stored history's write is told a deletion took back: it leaves what this process remembers too. */
  private forgetting(channelId: string, takenBack?: (drop: TurnFilter) => void): (drop: TurnFilter) => void {
    return (drop) => {
      this.forgetRemembered(channelId, drop);
      takenBack?.(drop);
    };
  }

  /** Drops turns from what this process remembers and what waits for the store. */
  private forgetHere(channelId: string, drop: TurnFilter): void {
    this.forgetRemembered(channelId, drop);
    for (let index = this.buffer.length - 1; index >= 0; index--) {
      const entry = this.buffer[index];
      if (entry?.channelId !== channelId) continue;
      const kept = entry.turns.filter((turn) => !drop(turn));
      if (kept.length === 0) this.buffer.splice(index, 1);
      else this.buffer[index] = { ...entry, turns: kept };
    }
  }

  /** Drops turns from what this process remembers (not from what waits: a flush may be writing it now). */
  private forgetRemembered(channelId: string, drop: TurnFilter): void {
    const remembered = this.memory.get(channelId);
    if (remembered)
      this.memory.set(
        channelId,
        remembered.filter((turn) => !drop(turn)),
      );
  }

  private recall(channelId: string): HistoryTurn[] {
    const cutoff = this.options.cutoff();
    return (this.memory.get(channelId) ?? []).filter((turn) => turn.at >= cutoff);
  }

  private remember(channelId: string, turns: readonly HistoryTurn[]): void {
    this.memory.delete(channelId);
    this.memory.set(channelId, turns.slice(-this.options.maxTurns));
    for (const oldest of this.memory.keys()) {
      if (this.memory.size <= this.options.memoryChannels) break;
      this.memory.delete(oldest);
    }
  }

  private hold(entry: ChannelWrite, takenBack?: (drop: TurnFilter) => void): void {
    this.buffer.push(takenBack ? { ...entry, takenBack } : entry);
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
          await this.stored.write(next, this.forgetting(next.channelId, next.takenBack));
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
      { err: error, operation },
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
