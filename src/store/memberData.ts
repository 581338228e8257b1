import type { Logger } from "../platform/logger.js";
import { DAY_MS, HOUR_MS } from "../platform/time.js";
import type { ErasureOutcome } from "../wording/keys.js";
import type { HistoryStore, HistoryTurn } from "./history.js";
import { INDEX } from "./idIndex.js";
import type { ModerationStore } from "./moderation.js";
import { dayOf, KEEP_HOURS, type MemberRef, type MoodCounts } from "./moodTally.js";
import type { Store } from "./openStore.js";
import type { PrivacyChoice, PrivacyStore } from "./privacy.js";
import type { SettingsStore } from "./settings.js";
import { madeBefore } from "./tombstones.js";

/** One stored turn as the export shows it. */
export interface ExportedTurn {
  readonly at: string;
  readonly messageId?: string;
  /** The display name stored with a member's own turn. */
  readonly author?: string;
  readonly text: string;
}

/**
 * Every kind of record the store holds that names one member or is about them: what /privacy export sends. Other
 * members' turns and the server's settings name no member; the deletion note is keyed by a keyed hash of the id.
 */
export interface MemberExport {
  readonly memberId: string;
  readonly exportedAt: string;
  readonly retentionDays: number;
  /** `privacy:<id>`: the opt-out, the one record that a deletion keeps (an opt-in removes it). */
  readonly settings: { readonly optedOut: boolean; readonly optedOutAt?: string };
  /** Their turns by channel id, oldest first. */
  readonly history: Record<string, ExportedTurn[]>;
  /** The bot's replies to them by channel id, oldest first: stored with their id, deleted with their turns. */
  readonly replies: Record<string, ExportedTurn[]>;
  /** Their mood counts by server id, then by UTC day. */
  readonly moodTallies: Record<string, Record<string, MoodCounts>>;
  /** The index entries holding their id, which lead a deletion to their data; each expires with that data. */
  readonly index: {
    /** The channels whose history holds their turns (`member-channels:<id>`). */
    readonly channels: string[];
    /** The servers where their mood is counted (`member-guilds:<id>`). */
    readonly servers: string[];
    /** The servers whose member list holds their id (`guild-members:<server>`). */
    readonly listedInServers: string[];
  };
  /** The note that their data was deleted (a tombstone, keyed by a keyed hash of their id, never the id). */
  readonly deletion?: { readonly at: string; readonly until: string };
}

export interface DeletionReport {
  readonly turns: number;
  readonly tallyServers: number;
  readonly erasure: ErasureOutcome;
}

export interface MemberDataDeps {
  readonly store: Store;
  readonly history: HistoryStore;
  readonly privacy: PrivacyStore;
  readonly settings: SettingsStore;
  readonly moderation: ModerationStore;
  readonly retentionDays: number;
  readonly logger: Logger;
  readonly now?: () => number;
}

/**
 * What members and server admins may do with the data the bot holds about them: see it, take it with them, and
 * have it deleted, down to the bytes on disk. Every lookup goes through the store's index, never a scan.
 */
export class MemberData {
  private readonly now: () => number;

  constructor(private readonly deps: MemberDataDeps) {
    this.now = deps.now ?? Date.now;
  }

  private get retentionMs(): number {
    return this.deps.retentionDays * DAY_MS;
  }

  /**
   * Records a member's mood in a server's tally (counts only), indexed so that deletion finds it. A message from
   * before the member's data was deleted (one still in the queue when they asked) is not counted. The tombstone is
   * read again after the writes: a deletion in between (here or on another shard) missed them, so they are taken
   * back, and with them any count of that day made in that instant after the deletion.
   */
  async recordMood(member: MemberRef, label: keyof MoodCounts, at: number): Promise<void> {
    const { index, moods } = this.deps.store;
    if (await this.deletedSince(member.memberId, at)) return;
    await index.add(INDEX.memberGuilds(member.memberId), [member.guildId], this.retentionMs);
    await index.add(INDEX.guildMembers(member.guildId), [member.memberId], this.retentionMs);
    await moods.recordMember(member, label, at, this.deps.retentionDays);
    if (!(await this.deletedSince(member.memberId, at))) return;
    await moods.forgetMember(member, dayOf(at), dayOf(at));
    await index.remove(INDEX.guildMembers(member.guildId), [member.memberId]);
    await index.remove(INDEX.memberGuilds(member.memberId), [member.guildId]);
  }

  private async deletedSince(memberId: string, at: number): Promise<boolean> {
    return madeBefore(at, (await this.deps.store.tombstones.deletedAt([memberId])).get(memberId));
  }

  /** A member's daily mood counts in a server, oldest first, over the last `days` days. */
  memberMood(member: MemberRef, days: number): Promise<MoodCounts[]> {
    const today = dayOf(this.now());
    return this.deps.store.moods.memberDays(member, today - days + 1, today);
  }

  async export(memberId: string): Promise<MemberExport> {
    const { privacy, store } = this.deps;
    const choice: PrivacyChoice = await privacy.choice(memberId);
    const channels = await store.index.get(INDEX.memberChannels(memberId));
    const turns = await this.memberTurns(channels, memberId);
    const servers = await store.index.get(INDEX.memberGuilds(memberId));
    const listedInServers: string[] = [];
    for (const guildId of servers) {
      if ((await store.index.get(INDEX.guildMembers(guildId))).includes(memberId))
        listedInServers.push(guildId);
    }
    const deletedAt = (await store.tombstones.deletedAt([memberId])).get(memberId);
    return {
      memberId,
      exportedAt: new Date(this.now()).toISOString(),
      retentionDays: this.deps.retentionDays,
      settings: {
        optedOut: choice.optedOut,
        ...(choice.at === undefined ? {} : { optedOutAt: new Date(choice.at).toISOString() }),
      },
      history: byChannel(turns, "user"),
      replies: byChannel(turns, "assistant"),
      moodTallies: await this.tallies(memberId, servers),
      index: { channels, servers, listedInServers },
      ...(deletedAt === undefined
        ? {}
        : {
            deletion: {
              at: new Date(deletedAt).toISOString(),
              until: new Date(deletedAt + this.retentionMs).toISOString(),
            },
          }),
    };
  }

  /** Removes deleted messages' turns and the replies to them; erases them on disk when any were stored. */
  async forgetMessages(channelId: string, messageIds: readonly string[]): Promise<number> {
    const removed = await this.deps.history.forgetMessages(channelId, messageIds);
    if (removed > 0) await this.erase();
    return removed;
  }

  /**
   * Deletes a member's turns, the bot's replies to them, their tallies everywhere and every index entry holding
   * their id; then erases them on disk. The opt-out stays, so that it goes on holding. Throws when the store fails
   * before everything is deleted: the index entries go last, so a retry finds all that is left.
   */
  async delete(memberId: string): Promise<DeletionReport> {
    const { store } = this.deps;
    const turns = await this.forgetTurns(memberId);
    const guilds = await store.index.get(INDEX.memberGuilds(memberId));
    const [from, to] = this.tallyDays();
    for (const guildId of guilds) {
      await store.moods.forgetMember({ guildId, memberId }, from, to);
      await store.index.remove(INDEX.guildMembers(guildId), [memberId]);
    }
    await store.index.delete(INDEX.memberGuilds(memberId));
    const erasure = await this.erase();
    this.deps.logger.info({ turns, tallyServers: guilds.length, erasure }, "member data deleted");
    return { turns, tallyServers: guilds.length, erasure };
  }

  /**
   * Deletes everything stored for a server: its channels' history and mood counts, its settings (moderation's
   * too), its members' tallies there, and its id and channels in its members' index entries. `channelIds` are the
   * channels Discord knows of; the index adds those that have gone since.
   */
  async purgeGuild(guildId: string, channelIds: readonly string[]): Promise<{ channels: number }> {
    const { history, store, settings, moderation } = this.deps;
    const indexed = await store.index.get(INDEX.guildChannels(guildId));
    const channels = [...new Set([...channelIds, ...indexed])];
    const members = await store.index.get(INDEX.guildMembers(guildId));
    const toHour = Math.floor(this.now() / HOUR_MS);
    for (const channelId of channels) {
      // Also takes the channel out of the index of every member whose turns it held.
      await history.clear(channelId);
      await store.moods.forgetChannel(channelId, toHour - KEEP_HOURS, toHour);
      await settings.delete("channel", channelId);
    }
    await settings.delete("guild", guildId);
    await moderation.delete(guildId);
    const [from, to] = this.tallyDays();
    for (const memberId of members) {
      await store.moods.forgetMember({ guildId, memberId }, from, to);
      await store.index.remove(INDEX.memberGuilds(memberId), [guildId]);
      // A member counted here may have turns that left the history (pushed out) while the index kept the channel.
      await store.index.remove(INDEX.memberChannels(memberId), channels);
    }
    await store.index.delete(INDEX.guildMembers(guildId));
    await store.index.delete(INDEX.guildChannels(guildId));
    const erasure = await this.erase();
    this.deps.logger.info({ guildId, channels: channels.length, erasure }, "server data purged");
    return { channels: channels.length };
  }

  /** The turns still kept that a member wrote or that answered them, by channel, oldest first. */
  private async memberTurns(
    channels: readonly string[],
    memberId: string,
  ): Promise<Record<string, HistoryTurn[]>> {
    const byChannel: Record<string, HistoryTurn[]> = {};
    for (const channelId of channels) {
      const stored = await this.deps.history.storedTurns(channelId);
      const theirs = stored.filter((turn) => turn.memberId === memberId);
      if (theirs.length > 0) byChannel[channelId] = theirs;
    }
    return byChannel;
  }

  /**
   * Removes every turn a member wrote and every reply to them, in every channel, through the member's index.
   *
   * What this process holds goes first, in every channel: a turn waiting for the store is not indexed yet. Then a
   * tombstone, before anything is removed from the store: another process's outage buffer, or a reply still being
   * generated, holds turns from before now, and its write drops them once it finds the tombstone. The index goes
   * last: when the store fails midway, this throws, and a retry still finds every channel.
   */
  private async forgetTurns(memberId: string): Promise<number> {
    const { history, store } = this.deps;
    const drop = (turn: unknown) => (turn as { memberId?: unknown })?.memberId === memberId;
    history.forgetHeld(drop);
    await store.tombstones.mark(memberId, this.now(), history.retentionMs);
    let removed = 0;
    for (const channelId of await store.index.get(INDEX.memberChannels(memberId))) {
      removed += await history.removeStored(channelId, drop);
    }
    await store.index.delete(INDEX.memberChannels(memberId));
    return removed;
  }

  /**
   * Makes what was deleted unrecoverable from the store's files. Its failure changes nothing about what was
   * deleted from the store, and is logged. On Redis the rewrite stays owed, and the store's maintenance starts it
   * once Redis answers again ("pending"); a SQLite file that could not be checkpointed keeps its copies until the
   * next deletion or restart checkpoints it, which is what "refused" tells.
   */
  private async erase(): Promise<ErasureOutcome> {
    try {
      return await this.deps.store.eraseDeleted();
    } catch (error) {
      const owed = this.deps.store.kind === "redis";
      this.deps.logger.warn(
        { err: error, owed },
        owed
          ? "deleted data could not yet be erased from Redis's files: the store's maintenance rewrites them once Redis answers"
          : "deleted data could not be erased from the store's files: copies stay there until they are rewritten",
      );
      return owed ? "pending" : "refused";
    }
  }

  private async tallies(
    memberId: string,
    servers: readonly string[],
  ): Promise<Record<string, Record<string, MoodCounts>>> {
    const moodTallies: Record<string, Record<string, MoodCounts>> = {};
    const days = this.tallyDays();
    for (const guildId of servers) {
      const counts = await this.deps.store.moods.memberDays({ guildId, memberId }, days[0], days[1]);
      const byDay: Record<string, MoodCounts> = {};
      counts.forEach((day, offset) => {
        if (day.positive + day.negative + day.neutral > 0) {
          byDay[new Date((days[0] + offset) * DAY_MS).toISOString().slice(0, 10)] = day;
        }
      });
      if (Object.keys(byDay).length > 0) moodTallies[guildId] = byDay;
    }
    return moodTallies;
  }

  /** The days a member tally can still exist: retention, and one more for a clock that crossed midnight. */
  private tallyDays(): [number, number] {
    const today = dayOf(this.now());
    return [today - this.deps.retentionDays - 1, today];
  }
}

function byChannel(
  turns: Record<string, HistoryTurn[]>,
  role: HistoryTurn["role"],
): Record<string, ExportedTurn[]> {
  const chosen: Record<string, ExportedTurn[]> = {};
  for (const [channelId, list] of Object.entries(turns)) {
    const theirs = list.filter((turn) => turn.role === role).map(exportedTurn);
    if (theirs.length > 0) chosen[channelId] = theirs;
  }
  return chosen;
}

function exportedTurn(turn: HistoryTurn): ExportedTurn {
  return {
    at: new Date(turn.at).toISOString(),
    ...(turn.messageId === undefined ? {} : { messageId: turn.messageId }),
    ...(turn.role === "user" && turn.author !== undefined ? { author: turn.author } : {}),
    text: turn.text,
  };
}
