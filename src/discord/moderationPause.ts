/** The least time between two notices to one server about moderation pausing and resuming. */
export const PAUSE_NOTICE_GAP_MS = 15 * 60_000;

/**
 * What each server's moderators were last told about moderation while the model cannot take work (a model server
 * away): once that checks are paused, and once that they run again, never once per message. It errs on the safe
 * side: they are never left believing that checks run while they do not. A pause is told as soon as a check
 * cannot run; the resume waits until PAUSE_NOTICE_GAP_MS after that notice, and a pause meanwhile tells nothing
 * new, so a flapping server posts at most one pair of notices per gap. A guild's channels are all on one shard,
 * so one process's view is exact; it holds only the servers paused now.
 */
export class ModerationPause {
  /** The servers told that moderation is paused, with when they were told. */
  private readonly toldPaused = new Map<string, number>();

  constructor(
    private readonly gapMs: number = PAUSE_NOTICE_GAP_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** A check could not run: true when this server's moderators are to be told now that moderation is paused. */
  paused(guildId: string): boolean {
    if (this.toldPaused.has(guildId)) return false;
    this.toldPaused.set(guildId, this.now());
    return true;
  }

  /** A check ran on a ready model: true when its moderators were told of a pause and are to be told it is over. */
  resumed(guildId: string): boolean {
    const toldAt = this.toldPaused.get(guildId);
    if (toldAt === undefined || this.now() - toldAt < this.gapMs) return false;
    this.toldPaused.delete(guildId);
    return true;
  }
}
