import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import KeyvSqlite from "@keyv/sqlite";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../src/platform/logger.js";
import { HistoryStore, type HistoryTurn } from "../src/store/history.js";
import { openStore, type Store } from "../src/store/openStore.js";
import { createRedisClient } from "../src/store/redisClient.js";
import { REPO_ROOT } from "../testkit/botProcess.js";
import { LogCapture } from "../testkit/harness.js";
import { RedisServer } from "../testkit/redis.js";
import { waitUntil } from "../testkit/waitUntil.js";
import { STORE_BACKENDS } from "./support/storeBackends.js";

// One recent time for every turn: retention would remove older ones, and equal turns compare equal.
const AT = Date.now();
const turn = (role: "user" | "assistant", text: string): HistoryTurn => ({ role, text, at: AT });

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
    const history = new HistoryStore(store, { maxTurns: 3 }, logger);
    await history.append(channel, [turn("user", "1"), turn("assistant", "2")]);
    await history.append(channel, [turn("user", "3"), turn("assistant", "4")]);
    await history.append(`${channel}-b`, [turn("user", "x")]);
    expect((await history.get(channel)).map((t) => t.text)).toEqual(["2", "3", "4"]);
    expect((await history.get(`${channel}-b`)).map((t) => t.text)).toEqual(["x"]);
    expect(await history.get(`${channel}-empty`)).toEqual([]);
  });

  it("loses nothing when appends to one channel race", async () => {
    const history = new HistoryStore(store, { maxTurns: 100 }, logger);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => history.append(channel, [turn("user", String(i))])),
    );
    const texts = (await history.get(channel)).map((t) => t.text);
    expect(texts).toHaveLength(20);
    expect(new Set(texts).size).toBe(20);
  });

  it("survives closing and reopening", async () => {
    await new HistoryStore(store, { maxTurns: 10 }, logger).append(channel, [
      { role: "user", text: "hi", author: "alice", at: AT },
    ]);
    await store.close();
    store = await openStore(backend.url, logger);
    expect(await new HistoryStore(store, { maxTurns: 10 }, logger).get(channel)).toEqual([
      { role: "user", text: "hi", author: "alice", at: AT },
    ]);
  });

  it("ignores a malformed stored history with a warning instead of crashing", async () => {
    await store.turns.append(channel, [{ not: "a turn" }], { keep: 10, ttlMs: 60_000 });
    const history = new HistoryStore(store, { maxTurns: 10 }, logger);
    expect(await history.get(channel)).toEqual([]);
    expect(logs.find("ignoring malformed channel history").length).toBeGreaterThan(0);
  });

  it("clears one channel", async () => {
    const history = new HistoryStore(store, { maxTurns: 10 }, logger);
    await history.append(channel, [turn("user", "1")]);
    await history.clear(channel);
    expect(await history.get(channel)).toEqual([]);
  });

  it("forgets a deleted message's turn and the reply to it, in this process and in the store", async () => {
    const history = new HistoryStore(store, { maxTurns: 10 }, logger);
    const said = (role: "user" | "assistant", text: string, messageId: string) => ({
      ...turn(role, text),
      messageId,
    });
    await history.append(channel, [said("user", "kept", "1"), said("assistant", "reply to kept", "1")]);
    await history.append(channel, [said("user", "deleted", "2"), said("assistant", "reply to deleted", "2")]);
    const texts = async (from: HistoryStore) => (await from.get(channel)).map((t) => t.text);
    expect(await texts(history)).toEqual(["kept", "reply to kept", "deleted", "reply to deleted"]);

    expect(await history.forgetMessages(channel, ["2"])).toBe(2);
    expect(await texts(history)).toEqual(["kept", "reply to kept"]);
    // Another process, with nothing in memory, reads the store.
    expect(await texts(new HistoryStore(store, { maxTurns: 10 }, logger))).toEqual(["kept", "reply to kept"]);
  });
});

describe("Redis history across processes", () => {
  it("never loses a turn when two separate connections append to one channel at once", async () => {
    const redis = await RedisServer.start();
    const logger = createLogger({ level: "silent" });
    try {
      const [a, b] = await Promise.all([openStore(redis.url, logger), openStore(redis.url, logger)]);
      const writers = [a, b].map((store) => new HistoryStore(store, { maxTurns: 1000 }, logger));
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

describe("a store that stops answering", () => {
  it("answers a read from what the process remembers once the read budget is spent, for its most recent channels", async () => {
    const redis = await RedisServer.start();
    const logger = createLogger({ level: "silent" });
    const store = await openStore(redis.url, logger);
    const pauser = createRedisClient(redis.url);
    await pauser.connect();
    try {
      const history = new HistoryStore(store, { maxTurns: 10, readBudgetMs: 200, memoryChannels: 2 }, logger);
      // Three channels, and room in memory for the two used last.
      await history.append("forgotten", [turn("user", "pushed out of memory")]);
      await history.append("general", [turn("user", "remembered")]);
      await history.append("newest", [turn("user", "also remembered")]);
      // Redis holds every client's commands for the pause: the history's read hangs, as on a stuck server.
      const pauseMs = 2_000;
      await pauser.sendCommand(["CLIENT", "PAUSE", String(pauseMs), "ALL"]);
      const asked = Date.now();
      expect((await history.get("general")).map((t) => t.text)).toEqual(["remembered"]);
      expect(Date.now() - asked).toBeLessThan(pauseMs / 2);
      expect(history.storeErrors).toBe(1);
      expect(await history.get("forgotten")).toEqual([]);
      expect(history.storeErrors).toBe(2);
      await history.close();
    } finally {
      await pauser.close();
      await store.close();
      await redis.stop();
    }
  });
});

describe("SQLite that cannot be written for a while", () => {
  const logger = createLogger({ level: "silent" });
  let dir: string;
  let url: string;
  let store: Store;
  let history: HistoryStore;
  /** A statement on the bot's own connection. */
  const onTheBotsConnection = (sql: string) =>
    (store.keyv.store as KeyvSqlite).query(sql) as Promise<Array<Record<string, number>>>;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "moodbot-sqlite-faults-"));
    url = `sqlite://${join(dir, "bot.sqlite")}`;
    store = await openStore(url, logger);
    history = new HistoryStore(store, { maxTurns: 10, retryMs: 50 }, logger);
  });
  afterEach(async () => {
    await history.close();
    await store.close();
  });

  /** Each fault, and how it clears. */
  const faults: Array<[string, () => Promise<() => Promise<unknown>>]> = [
    [
      "the disk is full (max_page_count)",
      async () => {
        const [{ page_count: pages } = {}] = await onTheBotsConnection("PRAGMA page_count");
        await onTheBotsConnection(`PRAGMA max_page_count = ${pages}`);
        return () => onTheBotsConnection("PRAGMA max_page_count = 1073741823");
      },
    ],
    [
      "the database is read-only",
      async () => {
        await onTheBotsConnection("PRAGMA query_only = ON");
        return () => onTheBotsConnection("PRAGMA query_only = OFF");
      },
    ],
    [
      "another connection holds the file (BEGIN EXCLUSIVE)",
      async () => {
        const other = new KeyvSqlite({ uri: url });
        await other.query("BEGIN EXCLUSIVE");
        return async () => {
          await other.query("COMMIT");
          await other.disconnect();
        };
      },
    ],
  ];

  it.each(faults)("keeps the conversation while %s, then writes it in order", async (_fault, start) => {
    const channel = "general";
    await history.append(channel, [turn("user", "before")]);
    const clear = await start();
    // Big enough to need new pages, so that a full disk really refuses it.
    const long = "x".repeat(20_000);
    await history.append(channel, [turn("user", "during"), turn("assistant", long)]);
    expect(history.bufferedTurns).toBe(2);
    expect((await history.get(channel)).map((t) => t.text)).toEqual(["before", "during", long]);

    await clear();
    await waitUntil(() => history.bufferedTurns === 0, { timeoutMs: 10_000 });
    const reader = await openStore(url, logger);
    const stored = (await reader.turns.read(channel)) as Array<{ text: string }>;
    await reader.close();
    expect(stored.map((t) => t.text)).toEqual(["before", "during", long]);
  });
});

describe("the buffer for an unwritable store", () => {
  it("keeps the newest turns up to its bound, logs how many it dropped, and writes the rest in order", async () => {
    const dir = await mkdtemp(join(tmpdir(), "moodbot-buffer-"));
    const url = `sqlite://${join(dir, "bot.sqlite")}`;
    const store = await openStore(url, createLogger({ level: "silent" }));
    const logs = new LogCapture();
    const history = new HistoryStore(
      store,
      { maxTurns: 10, bufferTurns: 3, retryMs: 50 },
      createLogger({ level: "debug", destination: logs.stream }),
    );
    const sqlite = store.keyv.store as KeyvSqlite;
    await sqlite.query("PRAGMA query_only = ON");
    for (const text of ["1", "2", "3", "4", "5"]) await history.append("general", [turn("user", text)]);
    expect(history.bufferedTurns).toBe(3);
    expect(
      logs.find("history buffer full: the oldest turns waiting for the store were dropped").at(-1),
    ).toMatchObject({ droppedInAll: 2 });
    // The store can still be read: the conversation is what it holds and what waits for it.
    expect((await history.get("general")).map((t) => t.text)).toEqual(["3", "4", "5"]);

    await sqlite.query("PRAGMA query_only = OFF");
    await waitUntil(() => history.bufferedTurns === 0, { timeoutMs: 10_000 });
    expect(((await store.turns.read("general")) as Array<{ text: string }>).map((t) => t.text)).toEqual([
      "3",
      "4",
      "5",
    ]);
    expect(logs.find("store reachable again: buffered history written").at(-1)).toMatchObject({ written: 3 });
    await history.close();
    await store.close();
  });
});

describe("SQLite after the process is killed", () => {
  it("keeps every history write that had completed", async () => {
    const dir = await mkdtemp(join(tmpdir(), "moodbot-sigkill-"));
    const url = `sqlite://${join(dir, "bot.sqlite")}`;
    const writer = spawn(
      process.execPath,
      ["--import", import.meta.resolve("tsx"), join(REPO_ROOT, "testkit", "historyWriter.ts"), url],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    let stderr = "";
    writer.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    const writes = () => (output.match(/^written /gm) ?? []).length;
    // Forty writes, or the writer's own end: a writer that dies fails the test at once, saying how.
    const enough = new Promise<void>((resolve, reject) => {
      writer.stdout?.on("data", (chunk: Buffer) => {
        output += chunk.toString("utf8");
        if (writes() >= 40) resolve();
      });
      writer.once("error", reject);
      writer.once("close", (code, signal) =>
        reject(
          new Error(
            `the history writer ended (exit code ${code}, signal ${signal}) after ${writes()} writes; its stderr:\n${stderr}`,
          ),
        ),
      );
    });
    await enough;
    writer.kill("SIGKILL");
    await once(writer, "exit");
    const written = [...output.matchAll(/^written (\d+)$/gm)].map((match) => Number(match[1]));

    const store = await openStore(url, createLogger({ level: "silent" }));
    const stored = ((await store.turns.read("general")) as Array<{ text: string }>).map((t) => t.text);
    await store.close();
    for (const index of written) expect(stored).toContain(`turn ${index}`);
  });
});
