import type { Logger } from "../logger.js";
import type { ErasureOutcome } from "./erasure.js";
import { DAY_MS, type HistoryStore, type HistoryTurn } from "./history.js";
import { INDEX } from "./idIndex.js";
import type { ModerationStore } from "./moderation.js";
import { dayOf, HOUR_MS, KEEP_HOURS, type MemberRef, type MoodCounts } from "./moodTally.js";
import type { Store } from "./openStore.js";
import type { PrivacyChoice, PrivacyStore } from "./privacy.js";
import type { SettingsStore } from "./settings.js";

/** Everything stored that one member wrote or that is about them: what /privacy export sends. */
export interface MemberExport {
  readonly memberId: string;
  readonly exportedAt: string;
  readonly retentionDays: number;
  readonly settings: { readonly optedOut: boolean; readonly optedOutAt?: string };
  /** Their turns by channel id, oldest first. */
  readonly history: Record<string, Array<{ at: string; messageId?: string; text: string }>>;
  /** Their mood counts by server id, then by UTC day. */
  readonly moodTallies: Record<string, Record<string, MoodCounts>>;
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

  /** Records a member's mood in a server's tally (counts only), indexed so that deletion finds it. */
  async recordMood(member: MemberRef, label: keyof MoodCounts, at: number): Promise<void> {
    const { index, moods } = this.deps.store;
    await index.add(INDEX.memberGuilds(member.memberId), [member.guildId]);
    await index.add(INDEX.guildMembers(member.guildId), [member.memberId]);
    await moods.recordMember(member, label, at, this.deps.retentionDays);
  }

  /** A member's daily mood counts in a server, oldest first, over the last `days` days. */
  memberMood(member: MemberRef, days: number): Promise<MoodCounts[]> {
    const today = dayOf(this.now());
    return this.deps.store.moods.memberDays(member, today - days + 1, today);
  }

  async export(memberId: string): Promise<MemberExport> {
    const { history, privacy, store } = this.deps;
    const choice: PrivacyChoice = await privacy.choice(memberId);
    const turns = await history.memberTurns(memberId);
    const moodTallies: Record<string, Record<string, MoodCounts>> = {};
    const days = this.tallyDays();
    for (const guildId of await store.index.get(INDEX.memberGuilds(memberId))) {
      const counts = await store.moods.memberDays({ guildId, memberId }, days[0], days[1]);
      const byDay: Record<string, MoodCounts> = {};
      counts.forEach((day, offset) => {
        if (day.positive + day.negative + day.neutral > 0) {
          byDay[new Date((days[0] + offset) * DAY_MS).toISOString().slice(0, 10)] = day;
        }
      });
      if (Object.keys(byDay).length > 0) moodTallies[guildId] = byDay;
    }
    return {
      memberId,
      exportedAt: new Date(this.now()).toISOString(),
      retentionDays: this.deps.retentionDays,
      settings: {
        optedOut: choice.optedOut,
        ...(choice.at === undefined ? {} : { optedOutAt: new Date(choice.at).toISOString() }),
      },
      history: Object.fromEntries(
        Object.entries(turns).map(([channelId, list]) => [channelId, list.map(exportedTurn)]),
      ),
      moodTallies,
    };
  }

  /** Removes deleted messages' turns and the replies to them; erases them on disk when any were stored. */
  async forgetMessages(channelId: string, messageIds: readonly string[]): Promise<number> {
    const removed = await this.deps.history.forgetMessages(channelId, messageIds);
    if (removed > 0) await this.deps.store.eraseDeleted();
    return removed;
  }

  /** Deletes a member's turns, the bot's replies to them and their tallies everywhere; then erases them on disk. */
  async delete(memberId: string): Promise<DeletionReport> {
    const { history, store } = this.deps;
    const turns = await history.forgetMember(memberId);
    const guilds = await store.index.get(INDEX.memberGuilds(memberId));
    const [from, to] = this.tallyDays();
    for (const guildId of guilds) await store.moods.forgetMember({ guildId, memberId }, from, to);
    await store.index.delete(INDEX.memberGuilds(memberId));
    const erasure = await store.eraseDeleted();
    this.deps.logger.info({ turns, tallyServers: guilds.length, erasure }, "member data deleted");
    return { turns, tallyServers: guilds.length, erasure };
  }

  /**
   * Deletes everything stored for a server: its channels' history and mood counts, its settings (moderation's
   * too) and its members' tallies there. `channelIds` are the channels Discord knows of; the index adds those that have gone since.
   */
  async purgeGuild(guildId: string, channelIds: readonly string[]): Promise<{ channels: number }> {
    const { history, store, settings, moderation } = this.deps;
    const channels = [...new Set([...channelIds, ...(await history.guildChannels(guildId))])];
    const toHour = Math.floor(this.now() / HOUR_MS);
    for (const channelId of channels) {
      await history.clear(channelId);
      await store.moods.forgetChannel(channelId, toHour - KEEP_HOURS, toHour);
      await settings.delete("channel", channelId);
    }
    await settings.delete("guild", guildId);
    await moderation.delete(guildId);
    const [from, to] = this.tallyDays();
    for (const memberId of await store.index.get(INDEX.guildMembers(guildId))) {
      await store.moods.forgetMember({ guildId, memberId }, from, to);
    }
    await store.index.delete(INDEX.guildMembers(guildId));
    await store.index.delete(INDEX.guildChannels(guildId));
    const erasure = await store.eraseDeleted();
    this.deps.logger.info({ guildId, channels: channels.length, erasure }, "server data purged");
    return { channels: channels.length };
  }

  /** The days a member tally can still exist: retention, and one more for a clock that crossed midnight. */
  private tallyDays(): [number, number] {
    const today = dayOf(this.now());
    return [today - this.deps.retentionDays - 1, today];
  }
}

function exportedTurn(turn: HistoryTurn) {
  return {
    at: new Date(turn.at).toISOString(),
    ...(turn.messageId === undefined ? {} : { messageId: turn.messageId }),
    text: turn.text,
  };
}
