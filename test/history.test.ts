import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../src/logger.js";
import { HistoryStore, type HistoryTurn, TURN_OVERHEAD_TOKENS, trimHistory } from "../src/store/history.js";
import { openStore, type Store } from "../src/store/openStore.js";
import { LogCapture } from "./support/harness.js";

const words = (text: string) => text.split(/\s+/).filter(Boolean).length;
const turn = (role: "user" | "assistant", text: string): HistoryTurn => ({ role, text, at: 0 });

describe("trimHistory", () => {
  const turns = [
    turn("user", "one two"),
    turn("assistant", "three"),
    turn("user", "four five six"),
    turn("assistant", "seven"),
  ];

  it("keeps the newest turns within the turn count", () => {
    expect(
      trimHistory(turns, { maxTurns: 2, maxTokens: 1_000, countTokens: words }).map((t) => t.text),
    ).toEqual(["four five six", "seven"]);
  });

  it("keeps the newest turns within the token budget, counting each turn's overhead", () => {
    const budget = words("four five six") + words("seven") + 2 * TURN_OVERHEAD_TOKENS;
    expect(trimHistory(turns, { maxTurns: 10, maxTokens: budget, countTokens: words })).toHaveLength(2);
    expect(trimHistory(turns, { maxTurns: 10, maxTokens: budget - 1, countTokens: words })).toHaveLength(0);
  });

  it("never starts on an assistant turn", () => {
    const kept = trimHistory(turns, { maxTurns: 3, maxTokens: 1_000, countTokens: words });
    expect(kept.map((t) => t.text)).toEqual(["four five six", "seven"]);
  });

  it("returns nothing when even the newest turn does not fit", () => {
    expect(trimHistory(turns, { maxTurns: 10, maxTokens: 3, countTokens: words })).toEqual([]);
  });
});

describe("HistoryStore on SQLite", () => {
  let dir: string;
  let store: Store;
  const logs = new LogCapture();
  const logger = createLogger({ level: "debug", destination: logs.stream });
  const url = () => `sqlite://${join(dir, "nested", "bot.sqlite")}`;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "moodbot-history-"));
    store = await openStore(url(), logger);
  });
  afterEach(async () => {
    await store.disconnect();
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps channels apart and caps each at maxTurns", async () => {
    const history = new HistoryStore(store, 3, logger);
    await history.append("a", [turn("user", "1"), turn("assistant", "2")]);
    await history.append("a", [turn("user", "3"), turn("assistant", "4")]);
    await history.append("b", [turn("user", "x")]);
    expect((await history.get("a")).map((t) => t.text)).toEqual(["2", "3", "4"]);
    expect((await history.get("b")).map((t) => t.text)).toEqual(["x"]);
    expect(await history.get("c")).toEqual([]);
  });

  it("loses nothing when appends to one channel race", async () => {
    const history = new HistoryStore(store, 100, logger);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => history.append("race", [turn("user", String(i))])),
    );
    const texts = (await history.get("race")).map((t) => t.text);
    expect(texts).toHaveLength(20);
    expect(new Set(texts).size).toBe(20);
  });

  it("survives closing and reopening the file", async () => {
    await new HistoryStore(store, 10, logger).append("a", [
      { role: "user", text: "hi", author: "alice", at: 5 },
    ]);
    await store.disconnect();
    store = await openStore(url(), logger);
    expect(await new HistoryStore(store, 10, logger).get("a")).toEqual([
      { role: "user", text: "hi", author: "alice", at: 5 },
    ]);
  });

  it("ignores a malformed stored value with a warning instead of crashing", async () => {
    await store.set("history:bad", { not: "a list" });
    const history = new HistoryStore(store, 10, logger);
    expect(await history.get("bad")).toEqual([]);
    expect(logs.find("ignoring malformed channel history")).toHaveLength(1);
  });

  it("clears one channel", async () => {
    const history = new HistoryStore(store, 10, logger);
    await history.append("a", [turn("user", "1")]);
    await history.clear("a");
    expect(await history.get("a")).toEqual([]);
  });
});
