import type Keyv from "keyv";
import { z } from "zod";

import type { Logger } from "../logger.js";

/** A member's privacy choice as stored; only an opt-out is stored at all. */
export interface PrivacyChoice {
  readonly optedOut: boolean;
  /** When the member chose it. */
  readonly at?: number;
}

const choiceSchema = z.object({ v: z.number().optional(), optedOut: z.boolean(), at: z.number().optional() });

export interface PrivacyOptions {
  /** How long a read is trusted: other processes sharing Redis see a change within this time. */
  readonly cacheMs?: number;
  /** Members whose choice is kept in memory; beyond this the least recently read are dropped. */
  readonly cacheSize?: number;
  readonly now?: () => number;
}

/**
 * Each member's opt-out, across the whole bot: stored in Keyv so every shard shares it, and kept in memory. A change
 * made here is in force from this process's next message, and from the others' within `cacheMs` (0 reads the store
 * for every message).
 *
 * It fails closed: when the choice cannot be read, the member's remembered choice holds, and a member with none
 * remembered counts as opted out.
 */
export class PrivacyStore {
  private readonly cache = new Map<string, { choice: PrivacyChoice; until: number }>();
  private readonly cacheMs: number;
  private readonly cacheSize: number;
  private readonly now: () => number;

  constructor(
    private readonly keyv: Keyv<unknown>,
    private readonly logger: Logger,
    options: PrivacyOptions = {},
  ) {
    this.cacheMs = options.cacheMs ?? 10_000;
    this.cacheSize = options.cacheSize ?? 50_000;
    this.now = options.now ?? Date.now;
  }

  private key(memberId: string): string {
    return `privacy:${memberId}`;
  }

  /** Whether the bot must leave this member's messages alone; true whenever that cannot be known. */
  async optedOut(memberId: string): Promise<boolean> {
    const cached = this.cache.get(memberId);
    if (cached && cached.until > this.now()) return cached.choice.optedOut;
    try {
      return (await this.choice(memberId)).optedOut;
    } catch (error) {
      // A stale choice is still the member's own; with none at all, the bot assumes the stricter one.
      const fallback = cached?.choice.optedOut ?? true;
      this.logger.warn(
        { err: error, optedOut: fallback, remembered: cached !== undefined },
        "privacy choice unreadable: failing closed",
      );
      return fallback;
    }
  }

  /** The stored choice, read from the store (not the cache); throws when the store cannot be read. */
  async choice(memberId: string): Promise<PrivacyChoice> {
    const raw = await this.keyv.get(this.key(memberId));
    const parsed = choiceSchema.safeParse(raw);
    if (raw !== undefined && !parsed.success) {
      this.logger.warn({ memberId }, "malformed privacy choice: treating the member as opted out");
    }
    const choice: PrivacyChoice =
      raw === undefined
        ? { optedOut: false }
        : parsed.success
          ? {
              optedOut: parsed.data.optedOut,
              ...(parsed.data.at === undefined ? {} : { at: parsed.data.at }),
            }
          : { optedOut: true };
    this.remember(memberId, choice);
    return choice;
  }

  /** Opting out stores the choice; opting in removes it, so nothing is stored about a member who never opted out. */
  async set(memberId: string, optedOut: boolean): Promise<void> {
    if (optedOut) {
      const choice = { optedOut: true, at: this.now() };
      await this.keyv.set(this.key(memberId), { v: 2, ...choice });
      this.remember(memberId, choice);
    } else {
      await this.keyv.delete(this.key(memberId));
      this.remember(memberId, { optedOut: false });
    }
  }

  private remember(memberId: string, choice: PrivacyChoice): void {
    this.cache.delete(memberId);
    this.cache.set(memberId, { choice, until: this.now() + this.cacheMs });
    for (const oldest of this.cache.keys()) {
      if (this.cache.size <= this.cacheSize) break;
      this.cache.delete(oldest);
    }
  }
}
