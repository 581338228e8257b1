import type Keyv from "keyv";
import { z } from "zod";

import type { Logger } from "../platform/logger.js";
import { CachedRecords } from "./cachedRecord.js";

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
 * for every message, as on Redis).
 *
 * It fails closed (`CachedRecords`, the policy settings and moderation share): when the choice cannot be read, the
 * member's last choice read holds, and a member with none remembered counts as opted out.
 */
export class PrivacyStore {
  private readonly records: CachedRecords<PrivacyChoice>;
  private readonly now: () => number;

  constructor(keyv: Keyv<unknown>, logger: Logger, options: PrivacyOptions = {}) {
    this.now = options.now ?? Date.now;
    this.records = new CachedRecords<PrivacyChoice>({
      keyv,
      logger,
      label: "privacy choice",
      freshMs: options.cacheMs ?? 10_000,
      maxEntries: options.cacheSize ?? 50_000,
      // A stale choice is still the member's own; with none at all, the bot assumes the stricter one.
      unknown: { optedOut: true },
      parse: (raw) => {
        if (raw === undefined) return { optedOut: false };
        const parsed = choiceSchema.safeParse(raw);
        if (!parsed.success) {
          // No id in the line: a member who later deletes their data leaves no trace of it in the logs.
          logger.warn("malformed privacy choice: treating the member as opted out");
          return { optedOut: true };
        }
        return {
          optedOut: parsed.data.optedOut,
          ...(parsed.data.at === undefined ? {} : { at: parsed.data.at }),
        };
      },
      now: this.now,
    });
  }

  private key(memberId: string): string {
    return `privacy:${memberId}`;
  }

  /** Whether the bot must leave this member's messages alone; true whenever that cannot be known. */
  async optedOut(memberId: string): Promise<boolean> {
    return (await this.records.get(this.key(memberId))).optedOut;
  }

  /** The stored choice, read from the store (not the cache); throws when the store cannot be read. */
  choice(memberId: string): Promise<PrivacyChoice> {
    return this.records.read(this.key(memberId));
  }

  /** Opting out stores the choice; opting in removes it, so nothing is stored about a member who never opted out. */
  async set(memberId: string, optedOut: boolean): Promise<void> {
    if (optedOut) {
      const choice = { optedOut: true, at: this.now() };
      await this.records.write(this.key(memberId), { v: 2, ...choice }, choice);
    } else {
      await this.records.remove(this.key(memberId), { optedOut: false });
    }
  }
}
