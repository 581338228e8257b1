import type { Logger } from "../platform/logger.js";
import { DAY_MS } from "../platform/time.js";
import type { IdIndex } from "./idIndex.js";
import { ResilientHistory } from "./resilientHistory.js";
import { StoredHistory } from "./storedHistory.js";
import type { Tombstones } from "./tombstones.js";
import type { TurnLog } from "./turnLog.js";

export interface HistoryTurn {
  readonly role: "user" | "assistant";
  readonly text: string;
  /** The speaker's display name, for user turns. */
  readonly author?: string;
  readonly at: number;
  /** The member who wrote a user turn, or whom an assistant turn answered. Turns stored before 2 have none. */
  readonly memberId?: string;
  /** The Discord message of a user turn, or the message an assistant turn answered. */
  readonly messageId?: string;
}

/** Picks turns: those to drop from a channel's history. */
export type TurnFilter = (turn: HistoryTurn) => boolean;

/** New turns of one channel, and its server (null in a direct message), under which the channel is indexed. */
export interface ChannelWrite {
  readonly channelId: string;
  readonly guildId: string | null;
  readonly turns: readonly HistoryTurn[];
}

/**
 * A history of channels: `StoredHistory` is the store's, `ResilientHistory` a decorator over one that answers
 * through a store outage.
 */
export interface ChannelHistory {
  /** A channel's valid, unexpired turns, the newest `maxTurns`, oldest first. */
  read(channelId: string): Promise<HistoryTurn[]>;
  /** Appends turns; `takenBack` is told which of them a member's deletion covers (never written, or removed). */
  write(entry: ChannelWrite, takenBack?: (drop: TurnFilter) => void): Promise<void>;
  /** Removes the turns `drop` picks and returns how many the store held. */
  remove(channelId: string, drop: (turn: unknown) => boolean): Promise<number>;
  /** Removes a channel's history, and the channel from the index of every member whose turns it held. */
  clear(channelId: string): Promise<void>;
}

/**
 * Where the history lives: the turn log, the index that finds a member's or a server's channels, and the notes of
 * deleted members that keep their turns from being written back.
 */
export interface HistoryBackend {
  readonly turns: TurnLog;
  readonly index: IdIndex;
  readonly tombstones: Tombstones;
}

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
  /** Each turn is kept this long after its own time (CHAT_HISTORY_TTL_DAYS). */
  readonly retentionMs?: number;
  /** The clock retention reads; tests move it instead of waiting. */
  readonly now?: () => number;
}

/**
 * Per-channel conversation turns, newest last, capped at `maxTurns`, validated on the way out. Appends go through
 * the store's turn log, which never loses a turn another writer appended.
 *
 * Every turn knows whose it is (member and message ids) and leaves after `retentionMs` from its own time: reads
 * never show an expired turn, appends let an idle channel's list expire with its newest turn, and `sweep` removes
 * expired turns from busy channels. A member's channels are indexed, so their turns are found without a scan
 * (`MemberData` does the finding).
 *
 * A store outage costs memory, not answers (`ResilientHistory`, over `StoredHistory`): neither `get` nor `append`
 * fails because of the store.
 */
export class HistoryStore {
  private readonly stored: StoredHistory;
  private readonly resilient: ResilientHistory;
  private readonly retention: number;

  constructor(backend: HistoryBackend, options: HistoryOptions, logger: Logger) {
    const { maxTurns } = options;
    this.retention = options.retentionMs ?? 30 * DAY_MS;
    this.stored = new StoredHistory(
      backend,
      { maxTurns, retentionMs: this.retention, now: options.now ?? Date.now },
      logger,
    );
    this.resilient = new ResilientHistory(
      this.stored,
      {
        maxTurns,
        bufferTurns: options.bufferTurns ?? 2_000,
        memoryChannels: options.memoryChannels ?? 1_000,
        readBudgetMs: options.readBudgetMs ?? 2_000,
        retryMs: options.retryMs ?? 500,
        cutoff: () => this.stored.cutoff,
      },
      logger,
    );
  }

  /** How long each turn is kept (CHAT_HISTORY_TTL_DAYS). */
  get retentionMs(): number {
    return this.retention;
  }

  /** Reads and writes of the store that failed, since the start. */
  get storeErrors(): number {
    return this.resilient.storeErrors;
  }

  /** Turns waiting for the store. */
  get bufferedTurns(): number {
    return this.resilient.bufferedTurns;
  }

  get(channelId: string): Promise<HistoryTurn[]> {
    return this.resilient.read(channelId);
  }

  /**
   * Appends turns to a channel's history, keeping the newest `maxTurns`. `guildId` (null in a direct message)
   * indexes the channel under its server, so removing the bot from the server finds it.
   */
  append(channelId: string, turns: readonly HistoryTurn[], guildId: string | null = null): Promise<void> {
    return this.resilient.write({ channelId, guildId, turns });
  }

  /**
   * Forgets a channel here and in the store, and takes it out of the index of every member whose turns it held.
   * Unlike reads and writes, this fails when the store does; the index goes last, so a retry still finds them.
   */
  clear(channelId: string): Promise<void> {
    return this.resilient.clear(channelId);
  }

  /**
   * Removes the turns of these messages (deleted in Discord) and the bot's replies to them. Fails when the store
   * does: the caller logs it, and retention removes the turns in the end.
   */
  forgetMessages(channelId: string, messageIds: readonly string[]): Promise<number> {
    const ids = new Set(messageIds);
    return this.resilient.remove(channelId, (turn) =>
      ids.has(String((turn as { messageId?: unknown })?.messageId)),
    );
  }

  /**
   * Drops turns from what this process holds, in every channel: remembered, and waiting for the store (where the
   * index does not lead yet). The first step of a member's deletion.
   */
  forgetHeld(drop: TurnFilter): void {
    this.resilient.forgetEverywhere(drop);
  }

  /** Every valid, unexpired turn the store holds for a channel, oldest first, however many. Fails with the store. */
  storedTurns(channelId: string): Promise<HistoryTurn[]> {
    return this.stored.read(channelId, Number.POSITIVE_INFINITY);
  }

  /** Removes the turns `drop` picks from the store alone, and returns how many went. Fails with the store. */
  removeStored(channelId: string, drop: (turn: unknown) => boolean): Promise<number> {
    return this.stored.remove(channelId, drop);
  }

  /**
   * Removes every expired turn from the store. With `setExpiry`, each channel's list is also set to expire with
   * its newest turn: lists written before retention existed have no expiry of their own.
   */
  sweep(options: { setExpiry?: boolean } = {}): Promise<{ channels: number; removed: number }> {
    return this.stored.sweep(options);
  }

  /** Tries once more to write what waits, then stops retrying; what could not be written is counted in the log. */
  close(): Promise<void> {
    return this.resilient.close();
  }
}
