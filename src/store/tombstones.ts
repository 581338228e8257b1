import { createHmac, randomBytes } from "node:crypto";
import type Keyv from "keyv";
import type { RedisClient } from "./redisClient.js";

/**
 * A note that a member's data was deleted, so that no process writes it back: another shard's outage buffer, or a
 * reply still being generated when the member asked, holds turns from before the deletion. A writer drops every
 * turn of the member from before the note's time, and a mood count from before it is not recorded.
 *
 * A tombstone is keyed by an HMAC-SHA256 of the member's id, never the id itself: the store keeps nothing that
 * names a member who asked to be deleted. The HMAC's key is 32 random bytes made once per store and kept in it:
 * - every shard sharing the store needs the same key to find another's tombstone, and the store is what they share;
 * - a key derived from the member id, the bot's token or another setting would be guessable, or would change
 *   when the setting does;
 * - it goes with the data it protects: a new store gets a new key, and a lost key loses only tombstones.
 * Whoever can read the store can read the key, and so can test whether a given id was deleted within the
 * retention; that person could read the member's data itself before the deletion. The key is never logged.
 *
 * A tombstone expires after the retention (CHAT_HISTORY_TTL_DAYS): any turn from before the deletion has expired
 * by then, and would neither be shown nor kept.
 */
/**
 * A tombstone's time comes from the deleting process's clock, and what it is compared with from another's (a
 * writer's, or Discord's for a message): machines sharing Redis differ by a little, so anything this close after a
 * deletion still counts as from before it. It errs toward deleting.
 */
export const CLOCK_SKEW_MS = 10_000;

/** Whether a record made at `at` comes from before a deletion at `deletedAt`. */
export function madeBefore(at: number, deletedAt: number | undefined): boolean {
  return deletedAt !== undefined && at <= deletedAt + CLOCK_SKEW_MS;
}

export interface Tombstones {
  /** Notes that a member's data was deleted at `at`, for `ttlMs`. */
  mark(memberId: string, at: number, ttlMs: number): Promise<void>;
  /** When each of these members' data was last deleted, for those with a tombstone in force. */
  deletedAt(memberIds: readonly string[]): Promise<Map<string, number>>;
}

const SECRET_BYTES = 32;
const SECRET_PATTERN = /^[0-9a-f]{64}$/;

/** Tombstones as Keyv values, which expire on Redis by themselves and on SQLite in the store's sweep. */
export class KeyvTombstones implements Tombstones {
  private secret: Promise<Buffer> | undefined;

  constructor(
    private readonly keyv: Keyv<unknown>,
    /** The store's HMAC key; read once, and again only after a failed read. */
    private readonly loadSecret: () => Promise<Buffer>,
  ) {}

  async mark(memberId: string, at: number, ttlMs: number): Promise<void> {
    await this.keyv.set(await this.key(memberId), { at }, ttlMs);
  }

  async deletedAt(memberIds: readonly string[]): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    if (memberIds.length === 0) return found;
    const keys = await Promise.all(memberIds.map((id) => this.key(id)));
    const values = await this.keyv.getMany(keys);
    values.forEach((value, index) => {
      const at = (value as { at?: unknown } | undefined)?.at;
      const memberId = memberIds[index];
      if (typeof at === "number" && memberId !== undefined) found.set(memberId, at);
    });
    return found;
  }

  private async key(memberId: string): Promise<string> {
    this.secret ??= this.loadSecret().catch((error: unknown) => {
      this.secret = undefined;
      throw error;
    });
    const secret = await this.secret;
    return `tombstone:${createHmac("sha256", secret).update(memberId).digest("hex")}`;
  }
}

/** The key under which a store keeps its tombstones' HMAC key. */
export const TOMBSTONE_SECRET_KEY = "tombstone-key";

const newSecret = () => randomBytes(SECRET_BYTES).toString("hex");

/** The HMAC key in a store one process owns (SQLite): made on first use. */
export function keyvSecret(keyv: Keyv<unknown>): () => Promise<Buffer> {
  return async () => {
    const stored = await keyv.get(TOMBSTONE_SECRET_KEY);
    if (typeof stored === "string" && SECRET_PATTERN.test(stored)) return Buffer.from(stored, "hex");
    const made = newSecret();
    await keyv.set(TOMBSTONE_SECRET_KEY, made);
    return Buffer.from(made, "hex");
  };
}

/** The HMAC key in a Redis every shard shares: SET NX, so the first process to make one makes it for all. */
export function redisSecret(client: RedisClient, key: string): () => Promise<Buffer> {
  return async () => {
    await client.set(key, newSecret(), { NX: true });
    const stored = await client.get(key);
    if (stored === null || !SECRET_PATTERN.test(stored)) {
      // Someone wrote something else there: replace it, or no tombstone could ever be found again.
      const made = newSecret();
      await client.set(key, made);
      return Buffer.from(made, "hex");
    }
    return Buffer.from(stored, "hex");
  };
}
