import { z } from "zod";

import type { Logger } from "../logger.js";
import { type IdIndex, INDEX } from "./idIndex.js";
import { madeBefore, type Tombstones } from "./tombstones.js";
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

/** The version of a stored turn's shape, written into each one: 2 added the member and message ids. */
export const TURN_VERSION = 2;

const turnSchema = z.object({
  v: z.number().optional(),
  role: z.enum(["user", "assistant"]),
  text: z.string(),
  author: z.string().optional(),
  at: z.number(),
  memberId: z.string().optional(),
  messageId: z.string().optional(),
});
const historySchema = z.array(turnSchema);

/**
 * Where the history lives: the turn log, the index that finds a member's or a server's channels, and the notes of
 * deleted members that keep their turns from being written back.
 */
export interface HistoryBackend {
  readonly turns: TurnLog;
  readonly index: IdIndex;
  readonly tombstones: Tombstones;
}

export const DAY_MS = 86_400_000;

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

interface Buffered {
  readonly channelId: string;
  readonly guildId: string | null;
  readonly turns: readonly HistoryTurn[];
}

/**
 * Per-channel conversation turns, newest last, capped at `maxTurns`, validated on the way out. Appends go through
 * the store's turn log, which never loses a turn another writer appended.
 *
 * Every turn knows whose it is (member and message ids) and leaves after `retentionMs` from its own time: reads
 * never show an expired turn, appends let an idle channel's list expire with its newest turn, and `sweep` removes
 * expired turns from busy channels. A member's channels are indexed, so their turns are found without a scan.
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

  private readonly turns: TurnLog;
  private readonly index: IdIndex;
  private readonly tombstones: Tombstones;

  constructor(
    backend: HistoryBackend,
    options: HistoryOptions,
    private readonly logger: Logger,
  ) {
    this.turns = backend.turns;
    this.index = backend.index;
    this.tombstones = backend.tombstones;
    this.options = {
      bufferTurns: 2_000,
      memoryChannels: 1_000,
      readBudgetMs: 2_000,
      retryMs: 500,
      retentionMs: 30 * DAY_MS,
      now: Date.now,
      ...options,
    };
  }

  /** How long each turn is kept (CHAT_HISTORY_TTL_DAYS). */
  get retentionMs(): number {
    return this.options.retentionMs;
  }

  /** Turns older than this time have expired. */
  private get cutoff(): number {
    return this.options.now() - this.options.retentionMs;
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

  /**
   * Appends turns to a channel's history, keeping the newest `maxTurns`. `guildId` (null in a direct message)
   * indexes the channel under its server, so removing the bot from the server finds it.
   */
  async append(
    channelId: string,
    turns: readonly HistoryTurn[],
    guildId: string | null = null,
  ): Promise<void> {
    if (turns.length === 0) return;
    this.remember(channelId, [...this.recall(channelId), ...turns]);
    // Once anything waits, later turns wait behind it: the store receives every channel's turns in order.
    if (this.buffer.length > 0) {
      this.hold({ channelId, guildId, turns });
      return;
    }
    try {
      await this.write({ channelId, guildId, turns });
    } catch (error) {
      this.unreachable(error, "write");
      this.hold({ channelId, guildId, turns });
    }
  }

  /**
   * Forgets a channel here and in the store, and takes it out of the index of every member whose turns it held.
   * Unlike reads and writes, this fails when the store does; the index goes last, so a retry still finds them.
   */
  async clear(channelId: string): Promise<void> {
    this.forgetHere(channelId, () => true);
    const members = new Set(
      ((await this.turns.read(channelId)) ?? []).flatMap((turn) => {
        const memberId = (turn as { memberId?: unknown })?.memberId;
        return typeof memberId === "string" ? [memberId] : [];
      }),
    );
    await this.turns.clear(channelId);
    for (const memberId of members) await this.index.remove(INDEX.memberChannels(memberId), [channelId]);
  }

  /**
   * Removes the turns of these messages (deleted in Discord) and the bot's replies to them. Fails when the store
   * does: the caller logs it, and retention removes the turns in the end.
   */
  async forgetMessages(channelId: string, messageIds: readonly string[]): Promise<number> {
    const ids = new Set(messageIds);
    const drop = (turn: unknown) => ids.has(String((turn as { messageId?: unknown })?.messageId));
    this.forgetHere(channelId, drop);
    return this.turns.remove(channelId, drop);
  }

  /**
   * Removes every turn a member wrote and every reply to them, in every channel, through the member's index.
   *
   * What this process holds goes first, in every channel: a turn waiting for the store is not indexed yet. Then a
   * tombstone, before anything is removed from the store: another process's outage buffer, or a reply still being
   * generated, holds turns from before now, and its write drops them once it finds the tombstone. The index goes
   * last: when the store fails midway, this throws, and a retry still finds every channel.
   */
  async forgetMember(memberId: string): Promise<number> {
    const drop = (turn: unknown) => (turn as { memberId?: unknown })?.memberId === memberId;
    const held = new Set([...this.memory.keys(), ...this.buffer.map((entry) => entry.channelId)]);
    for (const channelId of held) this.forgetHere(channelId, drop);
    await this.tombstones.mark(memberId, this.options.now(), this.options.retentionMs);
    let removed = 0;
    for (const channelId of await this.index.get(INDEX.memberChannels(memberId))) {
      removed += await this.turns.remove(channelId, drop);
    }
    await this.index.delete(INDEX.memberChannels(memberId));
    return removed;
  }

  /** The turns still kept that a member wrote or that answered them, by channel, oldest first. */
  async memberTurns(memberId: string): Promise<Record<string, HistoryTurn[]>> {
    const byChannel: Record<string, HistoryTurn[]> = {};
    for (const channelId of await this.index.get(INDEX.memberChannels(memberId))) {
      const theirs = this.parse(channelId, await this.turns.read(channelId), Number.POSITIVE_INFINITY).filter(
        (turn) => turn.memberId === memberId,
      );
      if (theirs.length > 0) byChannel[channelId] = theirs;
    }
    return byChannel;
  }

  /** The channels the index lists for a member: where their turns are (or were, until the entry expires). */
  memberChannels(memberId: string): Promise<string[]> {
    return this.index.get(INDEX.memberChannels(memberId));
  }

  /** Every channel of a server that has stored turns, through the server's index. */
  guildChannels(guildId: string): Promise<string[]> {
    return this.index.get(INDEX.guildChannels(guildId));
  }

  /**
   * Removes every expired turn from the store. With `setExpiry`, each channel's list is also set to expire with
   * its newest turn: lists written before retention existed have no expiry of their own.
   */
  async sweep(options: { setExpiry?: boolean } = {}): Promise<{ channels: number; removed: number }> {
    const cutoff = this.cutoff;
    const expired = (turn: unknown) => {
      const at = (turn as { at?: unknown })?.at;
      return typeof at !== "number" || at < cutoff;
    };
    let channels = 0;
    let removed = 0;
    for await (const channelId of this.turns.channels()) {
      channels++;
      removed += await this.turns.remove(channelId, expired);
      if (options.setExpiry) {
        const newest = Math.max(...this.parse(channelId, await this.turns.read(channelId)).map((t) => t.at));
        if (Number.isFinite(newest)) await this.turns.expireAt(channelId, newest + this.options.retentionMs);
      }
    }
    return { channels, removed };
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

  /**
   * Writes turns, indexing them first: a turn the index does not lead to could never be deleted. A turn of a
   * member deleted after it was made is never written: the tombstones are read before the write, and again after
   * it, because the member may have been deleted in between by another process (whose removal then missed it).
   */
  private async write(entry: Buffered): Promise<void> {
    const { channelId, guildId } = entry;
    const covered = deletionCover(entry.turns, await this.tombstones.deletedAt(membersOf(entry.turns)));
    const turns = entry.turns.filter((turn) => !covered(turn));
    if (turns.length < entry.turns.length) {
      const dropped = new Set(entry.turns.filter((turn) => !turns.includes(turn)));
      this.forgetRemembered(channelId, (turn) => dropped.has(turn));
    }
    if (turns.length === 0) return;
    const members = membersOf(turns);
    const ttlMs = this.options.retentionMs;
    for (const memberId of members) await this.index.add(INDEX.memberChannels(memberId), [channelId], ttlMs);
    if (guildId !== null) await this.index.add(INDEX.guildChannels(guildId), [channelId], ttlMs);
    await this.turns.append(
      channelId,
      turns.map((turn) => ({ v: TURN_VERSION, ...turn })),
      { keep: this.options.maxTurns, ttlMs },
    );
    // The turns are written: a failure from here on must not send them to the buffer to be written twice.
    try {
      const deletedSince = await this.tombstones.deletedAt(members);
      if (deletedSince.size > 0) await this.unwrite(channelId, deletedSince);
    } catch (error) {
      this.logger.warn(
        { err: error, channelId },
        "deletions made during this write could not be checked: a turn they missed stays until it expires",
      );
    }
  }

  /** Takes back turns that a deletion made while they were being written had missed, with their index entries. */
  private async unwrite(channelId: string, deletedAt: ReadonlyMap<string, number>): Promise<void> {
    const covered = deletionCover((await this.turns.read(channelId)) ?? [], deletedAt);
    if ((await this.turns.remove(channelId, covered)) === 0) return;
    this.forgetRemembered(channelId, covered);
    const left = new Set(membersOf(this.parse(channelId, await this.turns.read(channelId))));
    for (const memberId of deletedAt.keys()) {
      if (!left.has(memberId)) await this.index.remove(INDEX.memberChannels(memberId), [channelId]);
    }
  }

  /** Drops turns from what this process remembers and what waits for the store. */
  private forgetHere(channelId: string, drop: (turn: HistoryTurn) => boolean): void {
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
  private forgetRemembered(channelId: string, drop: (turn: HistoryTurn) => boolean): void {
    const remembered = this.memory.get(channelId);
    if (remembered)
      this.memory.set(
        channelId,
        remembered.filter((turn) => !drop(turn)),
      );
  }

  /** Valid, unexpired turns, newest `limit`. */
  private parse(channelId: string, raw: unknown[] | undefined, limit = this.options.maxTurns): HistoryTurn[] {
    if (raw === undefined) return [];
    const parsed = historySchema.safeParse(raw);
    const cutoff = this.cutoff;
    if (parsed.success) {
      return parsed.data
        .filter((turn) => turn.at >= cutoff)
        .map(withoutUndefined)
        .slice(-limit);
    }
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
    const cutoff = this.cutoff;
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

  private hold(entry: Buffered): void {
    this.buffer.push(entry);
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
          await this.write(next);
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

/** The members whose turns these are (or whom they answered). */
function membersOf(turns: readonly HistoryTurn[]): string[] {
  return [...new Set(turns.flatMap((turn) => (turn.memberId === undefined ? [] : [turn.memberId])))];
}

/**
 * Which of these turns a deletion covers: a member's turn from before their data was deleted, and the bot's reply
 * to one of those (the same message id), however long after the deletion the reply was finished.
 */
function deletionCover(
  turns: readonly unknown[],
  deletedAt: ReadonlyMap<string, number>,
): (turn: unknown) => boolean {
  if (deletedAt.size === 0) return () => false;
  const idsOf = (turn: unknown) => (turn ?? {}) as { memberId?: unknown; messageId?: unknown; at?: unknown };
  const fromBefore = (turn: unknown) => {
    const { memberId, at } = idsOf(turn);
    return typeof memberId === "string" && typeof at === "number" && madeBefore(at, deletedAt.get(memberId));
  };
  const answered = new Set(
    turns.filter(fromBefore).flatMap((turn) => {
      const { messageId } = idsOf(turn);
      return typeof messageId === "string" ? [messageId] : [];
    }),
  );
  return (turn) => {
    if (fromBefore(turn)) return true;
    const { memberId, messageId } = idsOf(turn);
    return (
      typeof memberId === "string" &&
      deletedAt.has(memberId) &&
      typeof messageId === "string" &&
      answered.has(messageId)
    );
  };
}

/** A stored turn as the app sees it: no version, and no key at all for a missing optional field. */
function withoutUndefined(turn: z.infer<typeof turnSchema>): HistoryTurn {
  const { role, text, at, author, memberId, messageId } = turn;
  return {
    role,
    text,
    at,
    ...(author === undefined ? {} : { author }),
    ...(memberId === undefined ? {} : { memberId }),
    ...(messageId === undefined ? {} : { messageId }),
  };
}
