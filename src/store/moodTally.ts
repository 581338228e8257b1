import type Keyv from "keyv";
import { SENTIMENT_LABELS, type SentimentLabel } from "../sentimentLabels.js";
import type { RedisClient } from "./redisClient.js";

/** Counts per label for one hour of one channel. Counts only: no message text is ever stored. */
export type MoodCounts = Record<SentimentLabel, number>;

export const HOUR_MS = 3_600_000;
/** Tallies older than this are never asked for (/mood covers at most 7 days) and expire. */
const KEEP_HOURS = 8 * 24;

export const emptyCounts = (): MoodCounts => ({ positive: 0, negative: 0, neutral: 0 });

/**
 * Per-channel, per-hour mood tallies, recorded as reactions happen. Increments are atomic where processes share
 * the store (Redis HINCRBY); with SQLite one process owns the file and serialises its own increments.
 */
export interface MoodTally {
  record(channelId: string, label: SentimentLabel, at: number): Promise<void>;
  /** Hourly counts from `fromHour` to `toHour` inclusive (hour numbers since the epoch), oldest first. */
  hours(channelId: string, fromHour: number, toHour: number): Promise<MoodCounts[]>;
}

const hourOf = (at: number) => Math.floor(at / HOUR_MS);

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
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly keyv: Keyv<unknown>) {}

  private key(channelId: string, hour: number): string {
    return `mood:${channelId}:${hour}`;
  }

  record(channelId: string, label: SentimentLabel, at: number): Promise<void> {
    const key = this.key(channelId, hourOf(at));
    const work = async () => {
      const counts = parseCounts(await this.keyv.get(key));
      counts[label]++;
      await this.keyv.set(key, counts, KEEP_HOURS * HOUR_MS);
    };
    // Increments are rare next to model work, so one chain for all of them is simplest and cannot lose one. The
    // chain only orders them: each caller still receives its own failure through `next`.
    const next = this.chain.then(work, work);
    this.chain = next.then(
      () => "recorded",
      () => "failed",
    );
    return next;
  }

  async hours(channelId: string, fromHour: number, toHour: number): Promise<MoodCounts[]> {
    // Reactions record their mood without waiting; /mood still counts every one recorded before it asked.
    await this.chain;
    const keys = [];
    for (let hour = fromHour; hour <= toHour; hour++) keys.push(this.key(channelId, hour));
    const values = await this.keyv.getMany(keys);
    return values.map(parseCounts);
  }
}

export class RedisMoodTally implements MoodTally {
  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
  ) {}

  async record(channelId: string, label: SentimentLabel, at: number): Promise<void> {
    const key = `${this.prefix}${channelId}:${hourOf(at)}`;
    await this.client
      .multi()
      .hIncrBy(key, label, 1)
      .expire(key, KEEP_HOURS * 3600)
      .exec();
  }

  async hours(channelId: string, fromHour: number, toHour: number): Promise<MoodCounts[]> {
    const multi = this.client.multi();
    for (let hour = fromHour; hour <= toHour; hour++) multi.hGetAll(`${this.prefix}${channelId}:${hour}`);
    const replies = (await multi.exec()) as unknown[];
    return replies.map(parseCounts);
  }
}
