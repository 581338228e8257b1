/** How long a channel that refused a reaction with 403 is left alone before the bot tries again. */
export const FORBIDDEN_COOLDOWN_MS = 10 * 60_000;

/**
 * Remembers channels where Discord answered 403 (Missing Permissions), so the bot logs it once per channel, does
 * no sentiment work there for a while, and carries on everywhere else. Permissions can be fixed by a server
 * admin at any time, hence the cooldown rather than a permanent mark.
 */
export class ChannelFaults {
  private readonly reactForbiddenUntil = new Map<string, number>();
  private readonly sendForbiddenUntil = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  cannotReact(channelId: string): boolean {
    return (this.reactForbiddenUntil.get(channelId) ?? 0) > this.now();
  }

  cannotSend(channelId: string): boolean {
    return (this.sendForbiddenUntil.get(channelId) ?? 0) > this.now();
  }

  /** Returns true the first time in a cooldown, so the caller logs once per channel. */
  recordReactionForbidden(channelId: string): boolean {
    return this.record(this.reactForbiddenUntil, channelId);
  }

  recordSendForbidden(channelId: string): boolean {
    return this.record(this.sendForbiddenUntil, channelId);
  }

  private record(map: Map<string, number>, channelId: string): boolean {
    const first = (map.get(channelId) ?? 0) <= this.now();
    if (first) map.set(channelId, this.now() + FORBIDDEN_COOLDOWN_MS);
    return first;
  }
}

/** Discord's answer to an action the bot's permissions do not allow. */
export function isForbidden(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { status?: unknown }).status === 403;
}
