/** Why a chat turn was refused; each gets its own notice. */
export type RefusalReason = "user-rate" | "channel-rate" | "busy";

export type Admission =
  | { readonly admitted: true; readonly release: () => void }
  | {
      readonly admitted: false;
      readonly reason: RefusalReason;
      /** True for the first refusal of this user in this window: send one notice, then stay quiet. */
      readonly notify: boolean;
    };

export interface ChatGateOptions {
  readonly userPerMinute: number;
  readonly channelPerMinute: number;
  readonly now?: () => number;
}

const WINDOW_MS = 60_000;

/**
 * Decides whether a chat turn may use the model: per-user and per-channel sliding-window rate limits, and at most
 * one generation in flight per channel. A refused user hears about it once per window, so the limit itself cannot
 * be used to make the bot spam.
 */
export class ChatGate {
  private readonly userTurns = new Map<string, number[]>();
  private readonly channelTurns = new Map<string, number[]>();
  private readonly busyChannels = new Set<string>();
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
    if (this.busyChannels.has(channelId)) reason = "busy";
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
    this.busyChannels.add(channelId);
    let released = false;
    return {
      admitted: true,
      release: () => {
        if (released) return;
        released = true;
        this.busyChannels.delete(channelId);
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

export const REFUSAL_NOTICES: Readonly<Record<RefusalReason, string>> = {
  "user-rate": "You're sending me messages faster than I can think! Give me a minute and try again. 🙂",
  "channel-rate": "This channel is keeping me very busy. Give me a minute and try again. 🙂",
  busy: "I'm still answering the previous message here. Ask me again once I've replied. 🙂",
};
