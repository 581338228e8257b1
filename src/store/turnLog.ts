import type Keyv from "keyv";
import type { RedisClient } from "./redisClient.js";

/**
 * A per-channel list of conversation turns, newest last. `append` must never lose a turn another writer appended,
 * so each backend makes it atomic where it can be shared:
 * - Keyv (SQLite): one process owns the file, and appends to one channel are serialised in that process.
 * - Redis: RPUSH and LTRIM in one MULTI transaction, atomic across every process and machine sharing the server.
 */
export interface TurnLog {
  /** The stored turns, unvalidated: the caller checks their shape. */
  read(channelId: string): Promise<unknown[] | undefined>;
  append(channelId: string, turns: readonly unknown[], keep: number): Promise<void>;
  clear(channelId: string): Promise<void>;
}

export class KeyvTurnLog implements TurnLog {
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(private readonly keyv: Keyv<unknown>) {}

  private key(channelId: string): string {
    return `history:${channelId}`;
  }

  async read(channelId: string): Promise<unknown[] | undefined> {
    const value = await this.keyv.get(this.key(channelId));
    if (value === undefined) return undefined;
    return Array.isArray(value) ? value : [value];
  }

  append(channelId: string, turns: readonly unknown[], keep: number): Promise<void> {
    return this.withChannelLock(channelId, async () => {
      const current = await this.keyv.get(this.key(channelId));
      const list = Array.isArray(current) ? current : [];
      await this.keyv.set(this.key(channelId), [...list, ...turns].slice(-keep));
    });
  }

  clear(channelId: string): Promise<void> {
    return this.withChannelLock(channelId, async () => {
      await this.keyv.delete(this.key(channelId));
    });
  }

  private async withChannelLock<T>(channelId: string, work: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(channelId) ?? Promise.resolve();
    const current = previous.then(work, work);
    const settled = current.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(channelId, settled);
    try {
      return await current;
    } finally {
      if (this.locks.get(channelId) === settled) this.locks.delete(channelId);
    }
  }
}

export class RedisTurnLog implements TurnLog {
  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
  ) {}

  async read(channelId: string): Promise<unknown[] | undefined> {
    const items = await this.client.lRange(this.prefix + channelId, 0, -1);
    if (items.length === 0) return undefined;
    return items.map((item) => {
      try {
        return JSON.parse(item) as unknown;
      } catch {
        // A foreign or damaged entry: kept as a string so validation reports it instead of crashing here.
        return item;
      }
    });
  }

  async append(channelId: string, turns: readonly unknown[], keep: number): Promise<void> {
    if (turns.length === 0) return;
    const key = this.prefix + channelId;
    await this.client
      .multi()
      .rPush(
        key,
        turns.map((turn) => JSON.stringify(turn)),
      )
      .lTrim(key, -keep, -1)
      .exec();
  }

  async clear(channelId: string): Promise<void> {
    await this.client.del(this.prefix + channelId);
  }
}
