import type Keyv from "keyv";
import { KeyedLock } from "./keyedLock.js";
import type { RedisClient } from "./redisClient.js";

/**
 * Sets of ids kept beside the data, so that one member's or one server's data is found without scanning the
 * store: the channels holding a member's turns, the servers holding a member's mood tallies, the channels and
 * members of a server. An id left behind after its data expired costs one empty read, never a wrong answer.
 */
export interface IdIndex {
  add(set: string, ids: readonly string[]): Promise<void>;
  get(set: string): Promise<string[]>;
  delete(set: string): Promise<void>;
}

/** Index sets by what they list. */
export const INDEX = {
  memberChannels: (memberId: string) => `member-channels:${memberId}`,
  memberGuilds: (memberId: string) => `member-guilds:${memberId}`,
  guildChannels: (guildId: string) => `guild-channels:${guildId}`,
  guildMembers: (guildId: string) => `guild-members:${guildId}`,
} as const;

/**
 * Pairs this process added: every message would otherwise rewrite the same set. Bounded, so cleared when full; only
 * for a store one process owns, where no other process can delete a set behind its back.
 */
class RecentlyAdded {
  private readonly pairs = new Set<string>();

  constructor(private readonly limit = 20_000) {}

  missing(set: string, ids: readonly string[]): string[] {
    return ids.filter((id) => !this.pairs.has(`${set}\u0000${id}`));
  }

  note(set: string, ids: readonly string[]): void {
    if (this.pairs.size + ids.length > this.limit) this.pairs.clear();
    for (const id of ids) this.pairs.add(`${set}\u0000${id}`);
  }

  forget(set: string): void {
    for (const pair of this.pairs) if (pair.startsWith(`${set}\u0000`)) this.pairs.delete(pair);
  }
}

/** Each set as one Keyv value (a sorted array), updated under a per-set lock by the one process owning the file. */
export class KeyvIdIndex implements IdIndex {
  private readonly lock = new KeyedLock();
  private readonly recent = new RecentlyAdded();

  constructor(private readonly keyv: Keyv<unknown>) {}

  private key(set: string): string {
    return `index:${set}`;
  }

  add(set: string, ids: readonly string[]): Promise<void> {
    const missing = this.recent.missing(set, ids);
    if (missing.length === 0) return Promise.resolve();
    return this.lock.run(set, async () => {
      const current = new Set(await this.read(set));
      const before = current.size;
      for (const id of missing) current.add(id);
      if (current.size !== before) await this.keyv.set(this.key(set), [...current].sort());
      this.recent.note(set, missing);
    });
  }

  get(set: string): Promise<string[]> {
    return this.lock.run(set, () => this.read(set));
  }

  delete(set: string): Promise<void> {
    return this.lock.run(set, async () => {
      this.recent.forget(set);
      await this.keyv.delete(this.key(set));
    });
  }

  private async read(set: string): Promise<string[]> {
    const value = await this.keyv.get(this.key(set));
    return Array.isArray(value) ? value.filter((id): id is string => typeof id === "string") : [];
  }
}

/**
 * Redis sets: SADD is atomic and idempotent, so every process sharing the server adds to the same set. Nothing is
 * remembered between calls: another process may delete a set at any time, and a member's next turn must be
 * indexed again.
 */
export class RedisIdIndex implements IdIndex {
  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
  ) {}

  async add(set: string, ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.client.sAdd(this.prefix + set, [...ids]);
  }

  async get(set: string): Promise<string[]> {
    return (await this.client.sMembers(this.prefix + set)).sort();
  }

  async delete(set: string): Promise<void> {
    await this.client.del(this.prefix + set);
  }
}
