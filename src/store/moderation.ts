import type Keyv from "keyv";
import { z } from "zod";

import type { Logger } from "../logger.js";

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

/**
 * Each server's moderation setup, in Keyv (shared by every shard) and cached, since it is read for every message.
 * While the store is unreachable the last setup read stays in force, and a server never read counts as off.
 */
export class ModerationStore {
  private readonly cache = new Map<string, { value: ModerationSettings; until: number }>();

  constructor(
    private readonly keyv: Keyv<unknown>,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  private key(guildId: string): string {
    return `moderation:${guildId}`;
  }

  async get(guildId: string): Promise<ModerationSettings> {
    const cached = this.cache.get(guildId);
    if (cached && cached.until > this.now()) return cached.value;
    try {
      const raw = await this.keyv.get(this.key(guildId));
      const parsed = schema.safeParse(raw);
      if (raw !== undefined && !parsed.success)
        this.logger.warn({ guildId }, "ignoring malformed moderation setup");
      const value = parsed.success ? fromStored(parsed.data) : MODERATION_OFF;
      this.remember(guildId, value);
      return value;
    } catch (error) {
      this.logger.warn({ err: error, guildId }, "moderation setup unreadable; keeping the last one");
      return cached?.value ?? MODERATION_OFF;
    }
  }

  async set(guildId: string, value: ModerationSettings): Promise<void> {
    await this.keyv.set(this.key(guildId), { v: 2, ...value });
    this.remember(guildId, value);
  }

  async delete(guildId: string): Promise<void> {
    await this.keyv.delete(this.key(guildId));
    this.cache.delete(guildId);
  }

  private remember(guildId: string, value: ModerationSettings): void {
    this.cache.set(guildId, { value, until: this.now() + CACHE_MS });
  }
}
