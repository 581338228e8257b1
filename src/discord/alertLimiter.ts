import { HOUR_MS } from "../platform/time.js";

/**
 * At most `perHour` moderation alerts per channel per clock hour: a raid or a misfiring threshold floods the alert
 * channel with a bounded number, and the rest are counted, not posted. A guild's channels are all on one shard,
 * so counting in the process is exact.
 */
export class AlertLimiter {
  private readonly hours = new Map<string, { hour: number; count: number }>();

  constructor(
    /** At least 1: MODERATION_ALERTS_PER_HOUR is a positive integer, so a channel's first alert of an hour is posted. */
    private readonly perHour: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one alert from the channel's allowance; false when this hour's is spent. */
  take(channelId: string): boolean {
    const hour = Math.floor(this.now() / HOUR_MS);
    const current = this.hours.get(channelId);
    if (!current || current.hour !== hour) {
      // Past hours are of no more use: dropping them keeps the map to the channels alerting this hour.
      if (current === undefined && this.hours.size > 10_000) this.hours.clear();
      this.hours.set(channelId, { hour, count: 1 });
      return true;
    }
    if (current.count >= this.perHour) return false;
    current.count++;
    return true;
  }
}
