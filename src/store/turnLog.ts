import type Keyv from "keyv";
import { KeyedSerialiser } from "../platform/keyedSerialiser.js";
import type { RedisClient } from "./redisClient.js";

/**
 * A per-channel list of conversation turns, newest last. No change may lose a turn another writer appended, so
 * each backend makes its changes atomic where the store can be shared:
 * - Keyv (SQLite): one process owns the file, and changes to one channel are serialised in that process.
 * - Redis: RPUSH and LTRIM in one MULTI transaction, and removal by LREM of the exact stored entries, atomic
 *   across every process and machine sharing the server.
 */
export interface TurnLog {
  /** The stored turns, unvalidated: the caller checks their shape. */
  read(channelId: string): Promise<unknown[] | undefined>;
  /** Appends, keeps the newest `keep`, and lets the whole list expire `ttlMs` after this write. */
  append(channelId: string, turns: readonly unknown[], limits: TurnLimits): Promise<void>;
  /** Removes the turns `drop` picks and returns how many went. */
  remove(channelId: string, drop: (turn: unknown) => boolean): Promise<number>;
  /** Lets the whole list expire at this time (the newest turn's time plus the retention). */
  expireAt(channelId: string, at: number): Promise<void>;
  clear(channelId: string): Promise<void>;
  /** Every channel that has stored turns, for the retention sweep. */
  channels(): AsyncIterable<string>;
}

export interface TurnLimits {
  readonly keep: number;
  readonly ttlMs: number;
}

const HISTORY_KEY = "history:";

export class KeyvTurnLog implements TurnLog {
  private readonly lock = new KeyedSerialiser();

  /** `keysWithPrefix` lists the stored keys (without the namespace) that start with a prefix. */
  constructor(
    private readonly keyv: Keyv<unknown>,
    private readonly keysWithPrefix: (prefix: string) => Promise<string[]>,
  ) {}

  private key(channelId: string): string {
    return HISTORY_KEY + channelId;
  }

  read(channelId: string): Promise<unknown[] | undefined> {
    return this.lock.run(channelId, () => this.readNow(channelId));
  }

  append(channelId: string, turns: readonly unknown[], limits: TurnLimits): Promise<void> {
    return this.lock.run(channelId, async () => {
      const list = (await this.readNow(channelId)) ?? [];
      await this.keyv.set(this.key(channelId), [...list, ...turns].slice(-limits.keep), limits.ttlMs);
    });
  }

  remove(channelId: string, drop: (turn: unknown) => boolean): Promise<number> {
    return this.lock.run(channelId, async () => {
      const key = this.key(channelId);
      const raw = await this.keyv.getRaw(key);
      const list = raw?.value;
      if (!Array.isArray(list)) return 0;
      const kept = list.filter((turn) => !drop(turn));
      const removed = list.length - kept.length;
      if (removed === 0) return 0;
      if (kept.length === 0) await this.keyv.delete(key);
      else await this.keyv.set(key, kept, remainingMs(raw?.expires));
      return removed;
    });
  }

  expireAt(channelId: string, at: number): Promise<void> {
    return this.lock.run(channelId, async () => {
      const list = await this.readNow(channelId);
      if (list === undefined) return;
      const ttl = at - Date.now();
      if (ttl <= 0) await this.keyv.delete(this.key(channelId));
      else await this.keyv.set(this.key(channelId), list, ttl);
    });
  }

  clear(channelId: string): Promise<void> {
    return this.lock.run(channelId, async () => {
      await this.keyv.delete(this.key(channelId));
    });
  }

  async *channels(): AsyncIterable<string> {
    for (const key of await this.keysWithPrefix(HISTORY_KEY)) yield key.slice(HISTORY_KEY.length);
  }

  private async readNow(channelId: string): Promise<unknown[] | undefined> {
    const value = await this.keyv.get(this.key(channelId));
    if (value === undefined) return undefined;
    return Array.isArray(value) ? value : [value];
  }
}

/** What is left of an expiry time, for a rewrite that must not extend it; undefined when it has none. */
function remainingMs(expires: number | undefined | null): number | undefined {
  return typeof expires === "number" ? Math.max(1, expires - Date.now()) : undefined;
}

export class RedisTurnLog implements TurnLog {
  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
  ) {}

  async read(channelId: string): Promise<unknown[] | undefined> {
    const items = await this.client.lRange(this.prefix + channelId, 0, -1);
    if (items.length === 0) return undefined;
    return items.map(parseEntry);
  }

  async append(channelId: string, turns: readonly unknown[], limits: TurnLimits): Promise<void> {
    if (turns.length === 0) return;
    const key = this.prefix + channelId;
    await this.client
      .multi()
      .rPush(
        key,
        turns.map((turn) => JSON.stringify(turn)),
      )
      .lTrim(key, -limits.keep, -1)
      .pExpire(key, limits.ttlMs)
      .exec();
  }

  async remove(channelId: string, drop: (turn: unknown) => boolean): Promise<number> {
    const key = this.prefix + channelId;
    const entries = await this.client.lRange(key, 0, -1);
    const dropped = entries.filter((entry) => drop(parseEntry(entry)));
    if (dropped.length === 0) return 0;
    // LREM removes the exact stored entry wherever it now is: a turn appended meanwhile is never touched.
    const multi = this.client.multi();
    for (const entry of dropped) multi.lRem(key, 1, entry);
    const counts = (await multi.exec()) as unknown[];
    return counts.reduce<number>((sum, count) => sum + Number(count), 0);
  }

  async expireAt(channelId: string, at: number): Promise<void> {
    await this.client.pExpireAt(this.prefix + channelId, at);
  }

  async clear(channelId: string): Promise<void> {
    await this.client.del(this.prefix + channelId);
  }

  async *channels(): AsyncIterable<string> {
    for await (const keys of this.client.scanIterator({ MATCH: `${this.prefix}*`, COUNT: 500 })) {
      for (const key of keys) yield key.slice(this.prefix.length);
    }
  }
}

function parseEntry(entry: string): unknown {
  try {
    return JSON.parse(entry) as unknown;
  } catch {
    // A foreign or damaged entry: kept as a string so validation reports it instead of crashing here.
    return entry;
  }
}
