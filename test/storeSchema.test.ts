import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StoreError } from "../src/platform/errors.js";
import { createLogger } from "../src/platform/logger.js";
import { DAY_MS } from "../src/platform/time.js";
import { HistoryStore } from "../src/store/history.js";
import { INDEX, INDEX_SLACK_MS } from "../src/store/idIndex.js";
import { openStore, type Store } from "../src/store/openStore.js";
import { createRedisClient } from "../src/store/redisClient.js";
import { migrateStore, STORE_SCHEMA_VERSION } from "../src/store/schema.js";
import { RedisServer } from "../testkit/redis.js";

const logger = createLogger({ level: "silent" });

/**
 * Each backend on a store of its own: migration reads and writes the store-wide layout version, which a shared
 * Redis must not see changed under other suites.
 */
interface Backend {
  readonly name: string;
  /** A fresh store, and a way to write a list of turns the way moodbot 1 did (no ids, no expiry). */
  open(): Promise<{
    url: string;
    writeLegacy: (channelId: string, turns: unknown[]) => Promise<void>;
    /** An index set as layout 2 wrote it: ids without expiry (a Redis set, a Keyv array). */
    writeLegacyIndex: (set: string, ids: string[]) => Promise<void>;
    expiryOf: (channelId: string) => Promise<number | undefined>;
    close: () => Promise<void>;
  }>;
}

const BACKENDS: Backend[] = [
  {
    name: "SQLite",
    async open() {
      const dir = await mkdtemp(join(tmpdir(), "moodbot-schema-"));
      const url = `sqlite://${join(dir, "bot.sqlite")}`;
      const raw = await openStore(url, logger);
      return {
        url,
        writeLegacy: async (channelId, turns) => {
          await raw.keyv.set(`history:${channelId}`, turns);
        },
        writeLegacyIndex: async (set, ids) => {
          await raw.keyv.set(`index:${set}`, ids);
        },
        expiryOf: async (channelId) => (await raw.keyv.getRaw(`history:${channelId}`))?.expires ?? undefined,
        close: async () => {
          await raw.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: "Redis",
    async open() {
      const server = await RedisServer.start();
      const client = createRedisClient(server.url);
      await client.connect();
      return {
        url: server.url,
        writeLegacy: async (channelId, turns) => {
          await client.rPush(
            `moodbot:turns:${channelId}`,
            turns.map((turn) => JSON.stringify(turn)),
          );
        },
        writeLegacyIndex: async (set, ids) => {
          await client.sAdd(`moodbot:index:${set}`, ids);
        },
        expiryOf: async (channelId) => {
          const at = await client.pExpireTime(`moodbot:turns:${channelId}`);
          return at > 0 ? at : undefined;
        },
        close: async () => {
          await client.quit();
          await server.stop();
        },
      };
    },
  },
];

describe.each(BACKENDS)("the store's layout on $name", (backend) => {
  let opened: Awaited<ReturnType<Backend["open"]>>;
  let store: Store;
  beforeAll(async () => {
    opened = await backend.open();
    store = await openStore(opened.url, logger);
  });
  afterAll(async () => {
    await store?.close();
    await opened?.close();
  });

  it("migrates turns stored before ids and retention: the expired leave, the rest expire with their newest", async () => {
    const now = Date.now();
    await opened.writeLegacy("legacy", [
      { role: "user", text: "from long ago", author: "alice", at: now - 40 * DAY_MS },
      { role: "user", text: "from last week", author: "alice", at: now - 7 * DAY_MS },
    ]);
    expect(await opened.expiryOf("legacy")).toBeUndefined();
    const history = new HistoryStore(store, { maxTurns: 12, retentionMs: 30 * DAY_MS }, logger);

    const migration = await migrateStore(store, opened.url, history, logger);
    expect(migration).toMatchObject({ from: 1, to: STORE_SCHEMA_VERSION, removed: 1 });
    expect(await history.get("legacy")).toEqual([
      { role: "user", text: "from last week", author: "alice", at: now - 7 * DAY_MS },
    ]);
    const expiry = await opened.expiryOf("legacy");
    expect(Math.abs((expiry ?? 0) - (now + 23 * DAY_MS))).toBeLessThan(60_000);

    // Once migrated, starting again changes nothing.
    expect(await migrateStore(store, opened.url, history, logger)).toMatchObject({
      from: STORE_SCHEMA_VERSION,
      to: STORE_SCHEMA_VERSION,
      channels: 0,
    });
  });

  it("migrates layout 2's index sets: each entry gets the retention from now, and later adds work", async () => {
    const set = INDEX.memberGuilds("900000000000000009");
    await opened.writeLegacyIndex(set, ["g1", "g2"]);
    await store.keyv.set("schema-version", 2);
    const history = new HistoryStore(store, { maxTurns: 12, retentionMs: 30 * DAY_MS }, logger);
    const migration = await migrateStore(store, opened.url, history, logger);
    expect(migration).toMatchObject({ from: 2, to: STORE_SCHEMA_VERSION, indexSets: 1 });
    expect(await store.index.get(set)).toEqual(["g1", "g2"]);
    await store.index.add(set, ["g3"], 30 * DAY_MS);
    expect(await store.index.get(set)).toEqual(["g1", "g2", "g3"]);
    // Dated now: past the retention, the sweep removes them.
    expect(await store.index.sweep(Date.now() + 29 * DAY_MS)).toBe(0);
    expect(await store.index.sweep(Date.now() + 31 * DAY_MS + INDEX_SLACK_MS)).toBeGreaterThanOrEqual(3);
    expect(await store.index.get(set)).toEqual([]);
  });

  it("refuses a store written by a newer moodbot rather than misreading it", async () => {
    const history = new HistoryStore(store, { maxTurns: 12 }, logger);
    await store.keyv.set("schema-version", STORE_SCHEMA_VERSION + 1);
    try {
      await expect(migrateStore(store, opened.url, history, logger)).rejects.toThrow(StoreError);
      await expect(migrateStore(store, opened.url, history, logger)).rejects.toThrow(/newer moodbot/);
    } finally {
      await store.keyv.set("schema-version", STORE_SCHEMA_VERSION);
    }
  });

  it("expires each turn by its own time, on an injected clock: hidden at once, removed by the sweep", async () => {
    let now = Date.now();
    const history = new HistoryStore(
      store,
      { maxTurns: 12, retentionMs: 30 * DAY_MS, now: () => now },
      logger,
    );
    await history.append("clocked", [{ role: "user", text: "day one", at: now, memberId: "7" }], "g1");
    now += 10 * DAY_MS;
    await history.append("clocked", [{ role: "user", text: "day eleven", at: now, memberId: "7" }], "g1");
    now += 25 * DAY_MS;
    expect((await history.get("clocked")).map((turn) => turn.text)).toEqual(["day eleven"]);
    await history.sweep();
    const stored = ((await store.turns.read("clocked")) ?? []) as Array<{ text: string; v: number }>;
    expect(stored).toEqual([expect.objectContaining({ text: "day eleven", v: 2 })]);
  });
});
