import { z } from "zod";
import type { CachedLabels, SharedResultStore } from "../llm/sharedResultCache.js";
import type { RedisClient } from "./redisClient.js";

export interface RedisResultCacheOptions {
  /** Key prefix: one namespace for the bot's cache slots. */
  readonly prefix: string;
  /** The cache never holds more than this many keys. */
  readonly slots: number;
  readonly ttlSeconds: number;
}

const entrySchema = z.object({
  key: z.string(),
  labels: z.object({ label: z.string(), probabilities: z.record(z.string(), z.number()) }),
});

/**
 * The sentiment result cache every shard and process shares, bounded by construction: a key hashes to one of
 * `slots` Redis keys, and a newer result in the same slot replaces the older one. Each slot expires after the TTL.
 * Keys are hashes; values are labels and probabilities, never message text.
 */
export class RedisResultCache implements SharedResultStore {
  constructor(
    private readonly client: RedisClient,
    private readonly options: RedisResultCacheOptions,
  ) {}

  async get(key: string): Promise<CachedLabels | undefined> {
    const raw = await this.client.get(this.slotKey(key));
    if (raw === null) return undefined;
    const parsed = entrySchema.safeParse(safeJson(raw));
    // Another key in the same slot, or a damaged value: a miss either way.
    if (!parsed.success || parsed.data.key !== key) return undefined;
    return parsed.data.labels;
  }

  async set(key: string, labels: CachedLabels): Promise<void> {
    await this.client.set(this.slotKey(key), JSON.stringify({ key, labels }), {
      expiration: { type: "EX", value: this.options.ttlSeconds },
    });
  }

  private slotKey(key: string): string {
    // The key is a hex digest: its leading 48 bits are uniform enough to pick a slot.
    const slot = Number.parseInt(key.slice(0, 12), 16) % this.options.slots;
    return `${this.options.prefix}${Number.isFinite(slot) ? slot : 0}`;
  }
}

function safeJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}
