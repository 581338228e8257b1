import type { RefusalReason } from "../wording/keys.js";

export type Admission =
  | {
      readonly admitted: true;
      /** Mentions ahead of this one in its channel: 0 when it can start at once. */
      readonly position: number;
      /** Resolves when every earlier mention in the channel is done, so replies keep their order. */
      readonly turn: Promise<void>;
      /** Ends this mention's turn (answered, failed or dropped); the next one in the channel may start. */
      readonly release: () => void;
    }
  | {
      readonly admitted: false;
      readonly reason: RefusalReason;
      /** True for the first refusal of this user in this window: send one notice, then stay quiet. */
      readonly notify: boolean;
    };

export interface ChatGateOptions {
  readonly userPerMinute: number;
  readonly channelPerMinute: number;
  /** Mentions that may wait in a channel behind the one being answered. */
  readonly channelQueue: number;
  readonly now?: () => number;
}

const WINDOW_MS = 60_000;

interface ChannelLine {
  /** Mentions admitted and not yet released: the one being answered and those waiting. */
  admitted: number;
  /** Settles when the last admitted mention is released. */
  tail: Promise<void>;
}

/**
 * Decides whether a chat turn may use the model: per-user and per-channel sliding-window rate limits, and a line
 * per channel in which mentions are answered one after another, in order, each seeing the reply before it. Up to
 * `channelQueue` mentions wait behind the one being answered; a waiting mention counts toward the rate limits.
 * A refused user hears about it once per window, so the limit itself cannot be used to make the bot spam.
 */
export class ChatGate {
  private readonly userTurns = new Map<string, number[]>();
  private readonly channelTurns = new Map<string, number[]>();
  private readonly lines = new Map<string, ChannelLine>();
  private readonly notifiedUntil = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly options: ChatGateOptions) {
    this.now = options.now ?? Date.now;
  }

  admit(userId: string, channelId: string): Admission {
    const now = this.now();
    this.prune(now);
    const user = this.userTurns.get(userId) ?? [];
    const channel = this.channelTurns.get(channelId) ?? [];
    let reason: RefusalReason | undefined;
    const line = this.lines.get(channelId);
    if (line && line.admitted > this.options.channelQueue) reason = "busy";
    else if (user.length >= this.options.userPerMinute) reason = "user-rate";
    else if (channel.length >= this.options.channelPerMinute) reason = "channel-rate";
    if (reason !== undefined) {
      const notify = (this.notifiedUntil.get(userId) ?? 0) <= now;
      if (notify) this.notifiedUntil.set(userId, now + WINDOW_MS);
      return { admitted: false, reason, notify };
    }
    user.push(now);
    channel.push(now);
    this.userTurns.set(userId, user);
    this.channelTurns.set(channelId, channel);
    return this.enterLine(channelId, line);
  }

  private enterLine(channelId: string, existing: ChannelLine | undefined): Admission {
    const line = existing ?? { admitted: 0, tail: Promise.resolve() };
    this.lines.set(channelId, line);
    const position = line.admitted;
    const turn = line.tail;
    let finish: () => void = () => undefined;
    const done = new Promise<void>((resolve) => {
      finish = resolve;
    });
    line.admitted++;
    line.tail = turn.then(() => done);
    let released = false;
    return {
      admitted: true,
      position,
      turn,
      release: () => {
        if (released) return;
        released = true;
        line.admitted--;
        if (line.admitted === 0 && this.lines.get(channelId) === line) this.lines.delete(channelId);
        finish();
      },
    };
  }

  /** Drops timestamps older than the window, so memory stays bounded by recent activity. */
  private prune(now: number): void {
    for (const map of [this.userTurns, this.channelTurns]) {
      for (const [key, times] of map) {
        const fresh = times.filter((time) => now - time < WINDOW_MS);
        if (fresh.length === 0) map.delete(key);
        else map.set(key, fresh);
      }
    }
    for (const [key, until] of this.notifiedUntil) if (until <= now) this.notifiedUntil.delete(key);
  }
}
