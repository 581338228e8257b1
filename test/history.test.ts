import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../src/logger.js";
import { HistoryStore, type HistoryTurn } from "../src/store/history.js";
import { openStore, type Store } from "../src/store/openStore.js";
import { LogCapture } from "../testkit/harness.js";
import { RedisServer } from "../testkit/redis.js";
import { STORE_BACKENDS } from "./support/storeBackends.js";

const turn = (role: "user" | "assistant", text: string): HistoryTurn => ({ role, text, at: 0 });

describe.each(STORE_BACKENDS)("HistoryStore on $name", ({ setUp }) => {
  let backend: { url: string; tearDown: () => Promise<void> };
  let store: Store;
  let channel: string;
  const logs = new LogCapture();
  const logger = createLogger({ level: "debug", destination: logs.stream });

  beforeAll(async () => {
    backend = await setUp();
  });
  afterAll(async () => backend?.tearDown());
  beforeEach(async () => {
    store = await openStore(backend.url, logger);
    channel = `c${Math.random().toString(36).slice(2)}`;
  });
  afterEach(async () => store?.close());

  it("keeps channels apart and caps each at maxTurns", async () => {
    const history = new HistoryStore(store.turns, { maxTurns: 3 }, logger);
    await history.append(channel, [turn("user", "1"), turn("assistant", "2")]);
    await history.append(channel, [turn("user", "3"), turn("assistant", "4")]);
    await history.append(`${channel}-b`, [turn("user", "x")]);
    expect((await history.get(channel)).map((t) => t.text)).toEqual(["2", "3", "4"]);
    expect((await history.get(`${channel}-b`)).map((t) => t.text)).toEqual(["x"]);
    expect(await history.get(`${channel}-empty`)).toEqual([]);
  });

  it("loses nothing when appends to one channel race", async () => {
    const history = new HistoryStore(store.turns, { maxTurns: 100 }, logger);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => history.append(channel, [turn("user", String(i))])),
    );
    const texts = (await history.get(channel)).map((t) => t.text);
    expect(texts).toHaveLength(20);
    expect(new Set(texts).size).toBe(20);
  });

  it("survives closing and reopening", async () => {
    await new HistoryStore(store.turns, { maxTurns: 10 }, logger).append(channel, [
      { role: "user", text: "hi", author: "alice", at: 5 },
    ]);
    await store.close();
    store = await openStore(backend.url, logger);
    expect(await new HistoryStore(store.turns, { maxTurns: 10 }, logger).get(channel)).toEqual([
      { role: "user", text: "hi", author: "alice", at: 5 },
    ]);
  });

  it("ignores a malformed stored history with a warning instead of crashing", async () => {
    await store.turns.append(channel, [{ not: "a turn" }], 10);
    const history = new HistoryStore(store.turns, { maxTurns: 10 }, logger);
    expect(await history.get(channel)).toEqual([]);
    expect(logs.find("ignoring malformed channel history").length).toBeGreaterThan(0);
  });

  it("clears one channel", async () => {
    const history = new HistoryStore(store.turns, { maxTurns: 10 }, logger);
    await history.append(channel, [turn("user", "1")]);
    await history.clear(channel);
    expect(await history.get(channel)).toEqual([]);
  });

  it("stores plain values through Keyv", async () => {
    await store.keyv.set(`value-${channel}`, { a: 1 });
    expect(await store.keyv.get(`value-${channel}`)).toEqual({ a: 1 });
  });
});

describe("Redis history across processes", () => {
  it("never loses a turn when two separate connections append to one channel at once", async () => {
    const redis = await RedisServer.start();
    const logger = createLogger({ level: "silent" });
    try {
      const [a, b] = await Promise.all([openStore(redis.url, logger), openStore(redis.url, logger)]);
      const writers = [a, b].map((store) => new HistoryStore(store.turns, { maxTurns: 1000 }, logger));
      await Promise.all(
        Array.from({ length: 100 }, (_, i) => writers[i % 2]?.append("shared", [turn("user", `turn ${i}`)])),
      );
      const texts = (await writers[0]?.get("shared"))?.map((t) => t.text) ?? [];
      expect(texts).toHaveLength(100);
      expect(new Set(texts).size).toBe(100);
      await Promise.all([a.close(), b.close()]);
    } finally {
      await redis.stop();
    }
  });
});
