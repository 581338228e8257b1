import type Keyv from "keyv";
import { KeyedSerialiser } from "../platform/keyedSerialiser.js";
import { HOUR_MS } from "../platform/time.js";
import type { RedisClient } from "./redisClient.js";

/**
 * Sets of ids kept beside the data, so that one member's or one server's data is found without scanning the
 * store: the channels holding a member's turns, the servers holding a member's mood tallies, the channels and
 * members of a server.
 *
 * Every entry expires with the data it leads to: an add gives the entry the data's retention from now (plus
 * `INDEX_SLACK_MS`, so that the entry never leaves before its data and the data can always still be found), a
 * later add renews it, and `sweep` removes entries whose time has passed. An entry holds a member's id, so it is
 * kept no longer than what it points to.
 */
export interface IdIndex {
  /** Adds ids to a set; each entry lasts `ttlMs` (the data's retention) from now, renewed by the next add. */
  add(set: string, ids: readonly string[], ttlMs: number): Promise<void>;
  /** The set's unexpired ids, sorted. */
  get(set: string): Promise<string[]>;
  /** Takes ids out of a set. */
  remove(set: string, ids: readonly string[]): Promise<void>;
  delete(set: string): Promise<void>;
  /** Removes every entry, in every set, that expired at or before `now`; returns how many went. */
  sweep(now: number): Promise<number>;
  /** Gives each entry stored before entries expired (layout 2) `ttlMs` from now; returns the sets rewritten. */
  upgrade(ttlMs: number): Promise<number>;
}

/** Index sets by what they list. */
export const INDEX = {
  memberChannels: (memberId: string) => `member-channels:${memberId}`,
  memberGuilds: (memberId: string) => `member-guilds:${memberId}`,
  guildChannels: (guildId: string) => `guild-channels:${guildId}`,
  guildMembers: (guildId: string) => `guild-members:${guildId}`,
} as const;

/**
 * How much longer than its data an entry may live: an entry left after its data costs one empty read, but data
 * left after its entry could no longer be found to be deleted. One hour, the maintenance sweep's period, also lets
 * the SQLite index write an entry once an hour rather than for every message.
 */
export const INDEX_SLACK_MS = HOUR_MS;

const KEY_PREFIX = "index:";

/**
 * The expiry this process last wrote for each (set, id): every message would otherwise rewrite the same set.
 * Bounded, so cleared when full; only for a store one process owns, where no other process can change a set
 * behind its back.
 */
class WrittenExpiries {
  private readonly expiries = new Map<string, number>();

  constructor(private readonly limit = 20_000) {}

  /** The ids whose entry would expire before `until`, and so must be written again. */
  due(set: string, ids: readonly string[], until: number): string[] {
    return ids.filter((id) => (this.expiries.get(pair(set, id)) ?? 0) < until);
  }

  note(set: string, ids: readonly string[], expires: number): void {
    if (this.expiries.size + ids.length > this.limit) this.expiries.clear();
    for (const id of ids) this.expiries.set(pair(set, id), expires);
  }

  forget(set: string, ids?: readonly string[]): void {
    if (ids !== undefined) {
      for (const id of ids) this.expiries.delete(pair(set, id));
      return;
    }
    for (const key of this.expiries.keys()) if (key.startsWith(`${set}\u0000`)) this.expiries.delete(key);
  }
}

const pair = (set: string, id: string) => `${set}\u0000${id}`;

/** A set as stored in Keyv: each id with the time its entry expires. Layout 2 stored a sorted array of ids. */
type StoredSet = Record<string, number>;
/** The expiry of an entry stored before entries had one, until `upgrade` gives it one (JSON has no Infinity). */
const UNDATED = Number.MAX_SAFE_INTEGER;

/**
 * Each set as one Keyv value (id → expiry), updated under a per-set lock by the one process owning the file. The
 * value itself expires with its last entry; @keyv/sqlite deletes an expired row only when it is read, so the
 * store's sweep deletes the rest.
 */
export class KeyvIdIndex implements IdIndex {
  private readonly lock = new KeyedSerialiser();
  private readonly written = new WrittenExpiries();

  /** `keysWithPrefix` lists the stored keys (without the namespace) that start with a prefix. */
  constructor(
    private readonly keyv: Keyv<unknown>,
    private readonly keysWithPrefix: (prefix: string) => Promise<string[]>,
  ) {}

  private key(set: string): string {
    return KEY_PREFIX + set;
  }

  add(set: string, ids: readonly string[], ttlMs: number): Promise<void> {
    const now = Date.now();
    const due = this.written.due(set, ids, now + ttlMs);
    if (due.length === 0) return Promise.resolve();
    return this.lock.run(set, async () => {
      const entries = await this.read(set, now);
      const expires = now + ttlMs + INDEX_SLACK_MS;
      for (const id of due) entries.set(id, Math.max(entries.get(id) ?? 0, expires));
      await this.write(set, entries, now);
      this.written.note(set, due, expires);
    });
  }

  get(set: string): Promise<string[]> {
    return this.lock.run(set, async () => [...(await this.read(set, Date.now())).keys()].sort());
  }

  remove(set: string, ids: readonly string[]): Promise<void> {
    return this.lock.run(set, async () => {
      this.written.forget(set, ids);
      const now = Date.now();
      const entries = await this.read(set, now);
      const before = entries.size;
      for (const id of ids) entries.delete(id);
      if (entries.size !== before) await this.write(set, entries, now);
    });
  }

  delete(set: string): Promise<void> {
    return this.lock.run(set, async () => {
      this.written.forget(set);
      await this.keyv.delete(this.key(set));
    });
  }

  async sweep(now: number): Promise<number> {
    let removed = 0;
    for (const key of await this.keysWithPrefix(KEY_PREFIX)) {
      const set = key.slice(KEY_PREFIX.length);
      removed += await this.lock.run(set, async () => {
        const stored = await this.stored(set);
        const kept = new Map([...stored].filter(([, expires]) => expires > now));
        if (kept.size === stored.size) return 0;
        this.written.forget(set);
        await this.write(set, kept, now);
        return stored.size - kept.size;
      });
    }
    return removed;
  }

  async upgrade(ttlMs: number): Promise<number> {
    let rewritten = 0;
    for (const key of await this.keysWithPrefix(KEY_PREFIX)) {
      const set = key.slice(KEY_PREFIX.length);
      rewritten += await this.lock.run(set, async () => {
        const stored = await this.stored(set);
        if (![...stored.values()].includes(UNDATED)) return 0;
        const now = Date.now();
        const dated = now + ttlMs + INDEX_SLACK_MS;
        const entries = new Map(
          [...stored].map(([id, expires]) => [id, expires === UNDATED ? dated : expires]),
        );
        await this.write(set, entries, now);
        return 1;
      });
    }
    return rewritten;
  }

  /** The unexpired entries. */
  private async read(set: string, now: number): Promise<Map<string, number>> {
    return new Map([...(await this.stored(set))].filter(([, expires]) => expires > now));
  }

  /** Every stored entry, expired or not; a layout-2 array's ids are undated until `upgrade` dates them. */
  private async stored(set: string): Promise<Map<string, number>> {
    const value = await this.keyv.get(this.key(set));
    if (Array.isArray(value)) {
      return new Map(value.filter((id): id is string => typeof id === "string").map((id) => [id, UNDATED]));
    }
    if (typeof value !== "object" || value === null) return new Map();
    return new Map(
      Object.entries(value as StoredSet).filter(
        (entry): entry is [string, number] => typeof entry[1] === "number",
      ),
    );
  }

  /** Writes the unexpired entries, the value expiring with the last of them; no entry left deletes the set. */
  private async write(set: string, entries: ReadonlyMap<string, number>, now: number): Promise<void> {
    const kept = [...entries].filter(([, expires]) => expires > now).sort(([a], [b]) => (a < b ? -1 : 1));
    if (kept.length === 0) {
      await this.keyv.delete(this.key(set));
      return;
    }
    const last = Math.max(...kept.map(([, expires]) => expires));
    const value: StoredSet = Object.fromEntries(kept);
    // Keyv dates a TTL from the real clock, whatever clock decided which entries are kept.
    await this.keyv.set(this.key(set), value, last === UNDATED ? undefined : Math.max(1, last - Date.now()));
  }
}

/**
 * Redis sorted sets, each entry scored by the time it expires: ZADD is atomic, so every process sharing the server
 * adds to the same set, and a read skips expired entries by score. The key itself expires with its newest entry
 * (every add to a set gives the same retention, so the newest add's expiry is the latest). Nothing is remembered
 * between calls: another process may delete a set at any time, and a member's next turn must be indexed again.
 */
export class RedisIdIndex implements IdIndex {
  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
  ) {}

  async add(set: string, ids: readonly string[], ttlMs: number): Promise<void> {
    if (ids.length === 0) return;
    const lifetime = ttlMs + INDEX_SLACK_MS;
    const score = Date.now() + lifetime;
    await this.client
      .multi()
      .zAdd(
        this.prefix + set,
        ids.map((value) => ({ score, value })),
      )
      .pExpire(this.prefix + set, lifetime)
      .exec();
  }

  async get(set: string): Promise<string[]> {
    return (await this.client.zRangeByScore(this.prefix + set, `(${Date.now()}`, "+inf")).sort();
  }

  async remove(set: string, ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.client.zRem(this.prefix + set, [...ids]);
  }

  async delete(set: string): Promise<void> {
    await this.client.del(this.prefix + set);
  }

  async sweep(now: number): Promise<number> {
    let removed = 0;
    for await (const keys of this.client.scanIterator({
      MATCH: `${this.prefix}*`,
      TYPE: "zset",
      COUNT: 500,
    })) {
      for (const key of keys) removed += await this.client.zRemRangeByScore(key, "-inf", now);
    }
    return removed;
  }

  async upgrade(ttlMs: number): Promise<number> {
    let rewritten = 0;
    for await (const keys of this.client.scanIterator({
      MATCH: `${this.prefix}*`,
      TYPE: "set",
      COUNT: 500,
    })) {
      for (const key of keys) {
        const ids = await this.client.sMembers(key);
        const lifetime = ttlMs + INDEX_SLACK_MS;
        const score = Date.now() + lifetime;
        const multi = this.client.multi().del(key);
        if (ids.length > 0) {
          multi.zAdd(
            key,
            ids.map((value) => ({ score, value })),
          );
          multi.pExpire(key, lifetime);
        }
        await multi.exec();
        rewritten++;
      }
    }
    return rewritten;
  }
}
