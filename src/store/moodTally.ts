import type Keyv from "keyv";
import { KeyedSerialiser } from "../platform/keyedSerialiser.js";
import { SENTIMENT_LABELS, type SentimentLabel } from "../platform/sentimentLabels.js";
import { DAY_MS, HOUR_MS, SECOND_MS } from "../platform/time.js";
import type { RedisClient } from "./redisClient.js";

/** Counts per label for one hour of one channel. Counts only: no message text is ever stored. */
export type MoodCounts = Record<SentimentLabel, number>;

/** Tallies older than this are never asked for (/mood covers at most 7 days) and expire. */
export const KEEP_HOURS = 8 * 24;

export const emptyCounts = (): MoodCounts => ({ positive: 0, negative: 0, neutral: 0 });

/**
 * Per-channel, per-hour mood tallies, recorded as reactions happen. Increments are atomic where processes share
 * the store (Redis HINCRBY); with SQLite one process owns the file and serialises its own increments.
 */
export interface MoodTally {
  record(channelId: string, label: SentimentLabel, at: number): Promise<void>;
  /** Hourly counts from `fromHour` to `toHour` inclusive (hour numbers since the epoch), oldest first. */
  hours(channelId: string, fromHour: number, toHour: number): Promise<MoodCounts[]>;
  /** Counts one member's message in one server, per UTC day, kept for `keepDays`. */
  recordMember(member: MemberRef, label: SentimentLabel, at: number, keepDays: number): Promise<void>;
  /** A member's daily counts in a server from `fromDay` to `toDay` inclusive (days since the epoch). */
  memberDays(member: MemberRef, fromDay: number, toDay: number): Promise<MoodCounts[]>;
  /** Deletes a member's daily counts in a server over these days. */
  forgetMember(member: MemberRef, fromDay: number, toDay: number): Promise<void>;
  /** Deletes a channel's hourly counts over these hours. */
  forgetChannel(channelId: string, fromHour: number, toHour: number): Promise<void>;
}

/** One member in one server: per-member tallies are per server. */
export interface MemberRef {
  readonly guildId: string;
  readonly memberId: string;
}

export const hourOf = (at: number) => Math.floor(at / HOUR_MS);
export const dayOf = (at: number) => Math.floor(at / DAY_MS);

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, index) => from + index);
}

const channelKey = (channelId: string, hour: number) => `mood:${channelId}:${hour}`;
const memberKey = (member: MemberRef, day: number) =>
  `member-mood:${member.guildId}:${member.memberId}:${day}`;

function parseCounts(value: unknown): MoodCounts {
  const counts = emptyCounts();
  if (typeof value !== "object" || value === null) return counts;
  for (const label of SENTIMENT_LABELS) {
    const n = Number((value as Record<string, unknown>)[label]);
    if (Number.isFinite(n) && n > 0) counts[label] = Math.floor(n);
  }
  return counts;
}

export class KeyvMoodTally implements MoodTally {
  /**
   * Increments of one key run one at a time, so none is lost; reads and deletions wait for every increment of
   * their keys started before them. Each caller still receives its own increment's failure.
   */
  private readonly increments = new KeyedSerialiser();

  constructor(private readonly keyv: Keyv<unknown>) {}

  record(channelId: string, label: SentimentLabel, at: number): Promise<void> {
    return this.increment(channelKey(channelId, hourOf(at)), label, KEEP_HOURS * HOUR_MS);
  }

  recordMember(member: MemberRef, label: SentimentLabel, at: number, keepDays: number): Promise<void> {
    return this.increment(memberKey(member, dayOf(at)), label, keepDays * DAY_MS);
  }

  private increment(key: string, label: SentimentLabel, ttlMs: number): Promise<void> {
    return this.increments.run(key, async () => {
      const counts = parseCounts(await this.keyv.get(key));
      counts[label]++;
      await this.keyv.set(key, counts, ttlMs);
    });
  }

  hours(channelId: string, fromHour: number, toHour: number): Promise<MoodCounts[]> {
    return this.read(range(fromHour, toHour).map((hour) => channelKey(channelId, hour)));
  }

  memberDays(member: MemberRef, fromDay: number, toDay: number): Promise<MoodCounts[]> {
    return this.read(range(fromDay, toDay).map((day) => memberKey(member, day)));
  }

  forgetMember(member: MemberRef, fromDay: number, toDay: number): Promise<void> {
    return this.delete(range(fromDay, toDay).map((day) => memberKey(member, day)));
  }

  forgetChannel(channelId: string, fromHour: number, toHour: number): Promise<void> {
    return this.delete(range(fromHour, toHour).map((hour) => channelKey(channelId, hour)));
  }

  private async delete(keys: string[]): Promise<void> {
    // An increment recorded before the deletion was asked for must not write its count back afterwards.
    await this.increments.settled(keys);
    await this.keyv.deleteMany(keys);
  }

  private async read(keys: string[]): Promise<MoodCounts[]> {
    // Reactions record their mood without waiting; a reader still counts every one recorded before it asked.
    await this.increments.settled(keys);
    if (keys.length === 0) return [];
    const values = await this.keyv.getMany(keys);
    return values.map(parseCounts);
  }
}

export class RedisMoodTally implements MoodTally {
  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
  ) {}

  record(channelId: string, label: SentimentLabel, at: number): Promise<void> {
    return this.increment(channelKey(channelId, hourOf(at)), label, (KEEP_HOURS * HOUR_MS) / SECOND_MS);
  }

  recordMember(member: MemberRef, label: SentimentLabel, at: number, keepDays: number): Promise<void> {
    return this.increment(memberKey(member, dayOf(at)), label, (keepDays * DAY_MS) / SECOND_MS);
  }

  hours(channelId: string, fromHour: number, toHour: number): Promise<MoodCounts[]> {
    return this.read(range(fromHour, toHour).map((hour) => channelKey(channelId, hour)));
  }

  memberDays(member: MemberRef, fromDay: number, toDay: number): Promise<MoodCounts[]> {
    return this.read(range(fromDay, toDay).map((day) => memberKey(member, day)));
  }

  async forgetMember(member: MemberRef, fromDay: number, toDay: number): Promise<void> {
    await this.client.del(range(fromDay, toDay).map((day) => this.prefix + memberKey(member, day)));
  }

  async forgetChannel(channelId: string, fromHour: number, toHour: number): Promise<void> {
    await this.client.del(range(fromHour, toHour).map((hour) => this.prefix + channelKey(channelId, hour)));
  }

  private async increment(key: string, label: SentimentLabel, ttlSeconds: number): Promise<void> {
    await this.client
      .multi()
      .hIncrBy(this.prefix + key, label, 1)
      .expire(this.prefix + key, ttlSeconds)
      .exec();
  }

  private async read(keys: string[]): Promise<MoodCounts[]> {
    if (keys.length === 0) return [];
    const multi = this.client.multi();
    for (const key of keys) multi.hGetAll(this.prefix + key);
    const replies = (await multi.exec()) as unknown[];
    return replies.map(parseCounts);
  }
}
