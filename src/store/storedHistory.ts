import { z } from "zod";

import type { Logger } from "../platform/logger.js";
import type { ChannelHistory, ChannelWrite, HistoryBackend, HistoryTurn, TurnFilter } from "./history.js";
import { type IdIndex, INDEX } from "./idIndex.js";
import { madeBefore, type Tombstones } from "./tombstones.js";
import type { TurnLog } from "./turnLog.js";

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

export interface StoredHistoryOptions {
  readonly maxTurns: number;
  readonly retentionMs: number;
  readonly now: () => number;
}

/**
 * The history as the store holds it: validated on the way out, under retention, and with ids on the way in. Every
 * operation fails when the store does; `ResilientHistory` is what answers through an outage.
 *
 * Each write indexes its channel under its members and its server before the turns go in, and keeps out the turns
 * of a member deleted after they were made (`Tombstones`), checking before the write and again after it.
 */
export class StoredHistory implements ChannelHistory {
  private readonly turns: TurnLog;
  private readonly index: IdIndex;
  private readonly tombstones: Tombstones;

  constructor(
    backend: HistoryBackend,
    private readonly options: StoredHistoryOptions,
    private readonly logger: Logger,
  ) {
    this.turns = backend.turns;
    this.index = backend.index;
    this.tombstones = backend.tombstones;
  }

  /** Turns older than this time have expired. */
  get cutoff(): number {
    return this.options.now() - this.options.retentionMs;
  }

  /** Valid, unexpired turns, newest `limit`, oldest first. */
  async read(channelId: string, limit = this.options.maxTurns): Promise<HistoryTurn[]> {
    return this.parse(channelId, await this.turns.read(channelId), limit);
  }

  /**
   * Writes turns, indexing them first: a turn the index does not lead to could never be deleted. A turn of a
   * member deleted after it was made is never written: the tombstones are read before the write, and again after
   * it, because the member may have been deleted in between by another process (whose removal then missed it).
   * `takenBack` is told which turns a deletion covered, as soon as that is known.
   */
  async write(entry: ChannelWrite, takenBack: (drop: TurnFilter) => void = () => {}): Promise<void> {
    const { channelId, guildId } = entry;
    const covered = deletionCover(entry.turns, await this.tombstones.deletedAt(membersOf(entry.turns)));
    const turns = entry.turns.filter((turn) => !covered(turn));
    if (turns.length < entry.turns.length) {
      const dropped = new Set(entry.turns.filter((turn) => !turns.includes(turn)));
      takenBack((turn) => dropped.has(turn));
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
    // The turns are written: a failure from here on must not make the caller write them twice.
    try {
      const deletedSince = await this.tombstones.deletedAt(members);
      if (deletedSince.size > 0) await this.unwrite(channelId, deletedSince, takenBack);
    } catch (error) {
      this.logger.warn(
        { err: error, channelId },
        "deletions made during this write could not be checked: a turn they missed stays until it expires",
      );
    }
  }

  /** Removes the turns `drop` picks and returns how many went. */
  remove(channelId: string, drop: (turn: unknown) => boolean): Promise<number> {
    return this.turns.remove(channelId, drop);
  }

  /** Removes a channel and takes it out of the index of every member whose turns it held; the index goes last. */
  async clear(channelId: string): Promise<void> {
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
        const newest = Math.max(...(await this.read(channelId)).map((t) => t.at));
        if (Number.isFinite(newest)) await this.turns.expireAt(channelId, newest + this.options.retentionMs);
      }
    }
    return { channels, removed };
  }

  /** Takes back turns that a deletion made while they were being written had missed, with their index entries. */
  private async unwrite(
    channelId: string,
    deletedAt: ReadonlyMap<string, number>,
    takenBack: (drop: TurnFilter) => void,
  ): Promise<void> {
    const covered = deletionCover((await this.turns.read(channelId)) ?? [], deletedAt);
    if ((await this.turns.remove(channelId, covered)) === 0) return;
    takenBack(covered);
    const left = new Set(membersOf(await this.read(channelId)));
    for (const memberId of deletedAt.keys()) {
      if (!left.has(memberId)) await this.index.remove(INDEX.memberChannels(memberId), [channelId]);
    }
  }

  /** Valid, unexpired turns, newest `limit`. */
  private parse(channelId: string, raw: unknown[] | undefined, limit: number): HistoryTurn[] {
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
