import type Keyv from "keyv";
import { z } from "zod";

import type { Logger } from "../platform/logger.js";
import { CachedRecords } from "./cachedRecord.js";

export const MODERATION_MODES = ["off", "dry-run", "live"] as const;
export type ModerationMode = (typeof MODERATION_MODES)[number];

/** A server's moderation setup from /settings moderation. */
export interface ModerationSettings {
  /** Off; dry-run posts alerts without action buttons; live adds them. */
  readonly mode: ModerationMode;
  readonly alertChannelId?: string;
  /** The channels whose messages are checked; a thread goes with its parent. */
  readonly channelIds: readonly string[];
  /** Alerts are posted at or above this confidence in a label other than ok. */
  readonly threshold: number;
  /** Members with any of these roles are never checked. */
  readonly bypassRoleIds: readonly string[];
}

/**
 * The threshold a server starts with: a cautious starting point, not a measured one (no real model can run where
 * this is built). `npm run eval -- --task toxicity` chooses one for a given model on the dev split of
 * eval/toxicity.jsonl; an admin sets it and watches dry-run alerts before going live.
 */
export const DEFAULT_MODERATION_THRESHOLD = 0.8;

export const MODERATION_OFF: ModerationSettings = Object.freeze({
  mode: "off",
  channelIds: [],
  threshold: DEFAULT_MODERATION_THRESHOLD,
  bypassRoleIds: [],
});

const schema = z.object({
  v: z.number().optional(),
  mode: z.enum(MODERATION_MODES),
  alertChannelId: z.string().optional(),
  channelIds: z.array(z.string()),
  threshold: z.number().min(0).max(1),
  bypassRoleIds: z.array(z.string()),
});

function fromStored(stored: z.infer<typeof schema>): ModerationSettings {
  const { mode, alertChannelId, channelIds, threshold, bypassRoleIds } = stored;
  return {
    mode,
    channelIds,
    threshold,
    bypassRoleIds,
    ...(alertChannelId === undefined ? {} : { alertChannelId }),
  };
}

/** How long a read is trusted: other processes sharing Redis see a change within this time. */
const CACHE_MS = 10_000;
/** Servers whose setup is kept in memory; beyond this the least recently used are dropped. */
const CACHE_ENTRIES = 10_000;

export interface ModerationOptions {
  readonly cacheMs?: number;
  readonly cacheSize?: number;
  readonly now?: () => number;
}

/**
 * Each server's moderation setup, in Keyv (shared by every shard) and cached, since it is read for every message.
 * While the store is unreachable the last setup read stays in force, and a server never read counts as off
 * (`CachedRecords`, the policy settings and opt-outs share).
 */
export class ModerationStore {
  private readonly records: CachedRecords<ModerationSettings>;

  constructor(keyv: Keyv<unknown>, logger: Logger, options: ModerationOptions = {}) {
    this.records = new CachedRecords<ModerationSettings>({
      keyv,
      logger,
      label: "moderation setup",
      freshMs: options.cacheMs ?? CACHE_MS,
      maxEntries: options.cacheSize ?? CACHE_ENTRIES,
      unknown: MODERATION_OFF,
      parse: (raw, key) => {
        const parsed = schema.safeParse(raw);
        if (parsed.success) return fromStored(parsed.data);
        if (raw !== undefined) logger.warn({ key }, "ignoring malformed moderation setup");
        return MODERATION_OFF;
      },
      ...(options.now === undefined ? {} : { now: options.now }),
    });
  }

  private key(guildId: string): string {
    return `moderation:${guildId}`;
  }

  /** The setup in force; never throws (the last one read while the store is away, or off). */
  get(guildId: string): Promise<ModerationSettings> {
    return this.records.get(this.key(guildId));
  }

  async set(guildId: string, value: ModerationSettings): Promise<void> {
    await this.records.write(this.key(guildId), { v: 2, ...value }, value);
  }

  async delete(guildId: string): Promise<void> {
    await this.records.remove(this.key(guildId), MODERATION_OFF);
  }
}
