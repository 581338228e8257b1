import Keyv from "keyv";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/platform/logger.js";
import { CachedRecords } from "../../src/store/cachedRecord.js";
import { MODERATION_OFF, type ModerationSettings, ModerationStore } from "../../src/store/moderation.js";
import { PrivacyStore } from "../../src/store/privacy.js";
import { SettingsStore } from "../../src/store/settings.js";
import { LogCapture } from "../../testkit/harness.js";

/**
 * A Keyv storage adapter in memory that the test controls: it can be taken down (every call throws, as a Redis that
 * went away does) and a read can be held until the test lets it answer.
 */
class ControlledStore {
  readonly data = new Map<string, unknown>();
  down = false;
  reads = 0;
  private held: Array<() => void> | undefined;

  async get(key: string): Promise<unknown> {
    this.reads++;
    this.check();
    const value = this.data.get(key);
    const held = this.held;
    if (held) await new Promise<void>((resolve) => held.push(resolve));
    return value;
  }
  async set(key: string, value: unknown): Promise<boolean> {
    this.check();
    this.data.set(key, value);
    return true;
  }
  async delete(key: string): Promise<boolean> {
    this.check();
    return this.data.delete(key);
  }
  async clear(): Promise<void> {
    this.data.clear();
  }

  /** Reads from now on answer (with what the store held when they were made) only once `release` is called. */
  holdReads(): () => void {
    const held: Array<() => void> = [];
    this.held = held;
    return () => {
      this.held = undefined;
      for (const resolve of held) resolve();
    };
  }

  private check() {
    if (this.down) throw new Error("store unreachable");
  }
}

function setup() {
  const store = new ControlledStore();
  const keyv = new Keyv<unknown>({ store, throwOnErrors: true });
  const logs = new LogCapture();
  const logger = createLogger({ level: "debug", destination: logs.stream });
  let now = 1_000_000;
  return { store, keyv, logger, logs, now: () => now, advance: (ms: number) => (now += ms) };
}

const LIVE: ModerationSettings = {
  mode: "live",
  alertChannelId: "900",
  channelIds: ["901"],
  threshold: 0.7,
  bypassRoleIds: [],
};

describe("CachedRecords", () => {
  function records(env: ReturnType<typeof setup>, maxEntries = 100) {
    return new CachedRecords<string>({
      keyv: env.keyv,
      logger: env.logger,
      label: "test record",
      freshMs: 1_000,
      maxEntries,
      unknown: "unknown",
      parse: (raw) => (typeof raw === "string" ? raw : "absent"),
      now: env.now,
    });
  }

  it("answers the last value read when a read fails after the cache went stale, and `unknown` for a key never read", async () => {
    const env = setup();
    const cache = records(env);
    await env.keyv.set("a", "first");
    expect(await cache.get("a")).toBe("first");
    env.advance(5_000);
    env.store.down = true;
    const readsBefore = env.store.reads;
    expect(await cache.get("a")).toBe("first");
    // The stale value was not served from memory: the store was asked, and failed.
    expect(env.store.reads).toBe(readsBefore + 1);
    expect(await cache.get("never-read")).toBe("unknown");
    env.store.down = false;
    await env.keyv.set("a", "second");
    expect(await cache.get("a")).toBe("second");
  });

  it("throws from read when the store cannot be read: a caller that must know the truth is told", async () => {
    const env = setup();
    const cache = records(env);
    await env.keyv.set("a", "first");
    await cache.get("a");
    env.store.down = true;
    await expect(cache.read("a")).rejects.toThrow("store unreachable");
  });

  it("keeps at most maxEntries, dropping the least recently used", async () => {
    const env = setup();
    const cache = records(env, 3);
    for (const key of ["a", "b", "c", "d"]) await env.keyv.set(key, `value ${key}`);
    await cache.get("a");
    await cache.get("b");
    await cache.get("c");
    // Using "a" again makes "b" the least recently used.
    await cache.get("a");
    await cache.get("d");
    expect(cache.size).toBe(3);
    env.store.down = true;
    env.advance(5_000);
    expect(await cache.get("b")).toBe("unknown");
    expect(await cache.get("a")).toBe("value a");
    expect(await cache.get("c")).toBe("value c");
    expect(await cache.get("d")).toBe("value d");
  });

  it("a read that was in flight when a write landed does not put the older value back", async () => {
    const env = setup();
    const cache = records(env);
    await env.keyv.set("a", "old");
    const release = env.store.holdReads();
    const inFlight = cache.get("a");
    await cache.write("a", "new", "new");
    release();
    expect(await inFlight).toBe("old");
    expect(await cache.get("a")).toBe("new");
  });

  it("logs an outage once when it starts and once when it ends, not for every read", async () => {
    const env = setup();
    const cache = records(env);
    await cache.get("a");
    env.store.down = true;
    env.advance(5_000);
    for (let i = 0; i < 5; i++) await cache.get("a");
    env.store.down = false;
    await cache.get("a");
    const warnings = env.logs.find(
      "test record unreadable: the last value read holds until the store answers",
    );
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.err).toMatchObject({ message: "store unreachable" });
    expect(env.logs.find("test record readable again")).toHaveLength(1);
  });
});

describe("a store blip changes no setting", () => {
  it("SettingsStore: reactions off, a persona and language zh stay in force while the store cannot be read", async () => {
    const env = setup();
    const settings = new SettingsStore(env.keyv, env.logger, { now: env.now });
    await settings.set("guild", "g1", "persona", "a pirate");
    await settings.set("channel", "c1", "reactions", "off");
    await settings.set("channel", "c1", "language", "zh");
    const expected = { persona: "a pirate", reactions: "off", language: "zh" };
    expect(await settings.effective("g1", "c1")).toEqual(expected);
    // Past the cache's 10 s, the store is read again, and fails.
    env.advance(11_000);
    env.store.down = true;
    const readsBefore = env.store.reads;
    expect(await settings.effective("g1", "c1")).toEqual(expected);
    expect(env.store.reads).toBe(readsBefore + 2);
    // A channel never read gets the defaults, over its guild's remembered settings.
    expect(await settings.effective("g1", "c2")).toEqual({ persona: "a pirate" });
  });

  it("SettingsStore: the cache is bounded", async () => {
    const env = setup();
    const settings = new SettingsStore(env.keyv, env.logger, { now: env.now, cacheSize: 2 });
    for (const channel of ["c1", "c2", "c3"]) await settings.set("channel", channel, "reactions", "off");
    for (const channel of ["c1", "c2", "c3"]) await settings.effective(null, channel);
    env.advance(11_000);
    env.store.down = true;
    expect(await settings.effective(null, "c1")).toEqual({});
    expect(await settings.effective(null, "c3")).toEqual({ reactions: "off" });
  });

  it("SettingsStore: a change is read from the store, so another shard's recent change is kept", async () => {
    const env = setup();
    const settings = new SettingsStore(env.keyv, env.logger, { now: env.now });
    await settings.set("channel", "c1", "reactions", "off");
    // Another process sets the persona within this one's 10 s.
    await env.keyv.set("settings:channel:c1", { reactions: "off", persona: "a pirate" });
    await settings.set("channel", "c1", "language", "zh");
    expect(await settings.get("channel", "c1")).toEqual({
      reactions: "off",
      persona: "a pirate",
      language: "zh",
    });
  });

  it("SettingsStore: what one process stored, another reads (a restart, another shard)", async () => {
    const env = setup();
    const writer = new SettingsStore(env.keyv, env.logger, { now: env.now });
    await writer.set("channel", "c1", "reactions", "off");
    const reader = new SettingsStore(env.keyv, env.logger, { now: env.now });
    expect(await reader.effective(null, "c1")).toEqual({ reactions: "off" });
    expect(env.logs.find("ignoring malformed settings")).toHaveLength(0);
  });

  it("ModerationStore: a live setup stays live while the store cannot be read; a server never read is off", async () => {
    const env = setup();
    const moderation = new ModerationStore(env.keyv, env.logger, { now: env.now });
    await env.keyv.set("moderation:g1", { v: 2, ...LIVE });
    expect(await moderation.get("g1")).toEqual(LIVE);
    env.advance(11_000);
    env.store.down = true;
    expect(await moderation.get("g1")).toEqual(LIVE);
    expect(await moderation.get("g2")).toEqual(MODERATION_OFF);
  });

  it("ModerationStore: the cache is bounded", async () => {
    const env = setup();
    const moderation = new ModerationStore(env.keyv, env.logger, { now: env.now, cacheSize: 2 });
    for (const guild of ["g1", "g2", "g3"]) await env.keyv.set(`moderation:${guild}`, { v: 2, ...LIVE });
    for (const guild of ["g1", "g2", "g3"]) await moderation.get(guild);
    env.advance(11_000);
    env.store.down = true;
    expect(await moderation.get("g1")).toEqual(MODERATION_OFF);
    expect(await moderation.get("g3")).toEqual(LIVE);
  });

  it("PrivacyStore on Redis's terms (cacheMs 0): every read reaches the store, and the last one read survives a blip", async () => {
    const env = setup();
    const privacy = new PrivacyStore(env.keyv, env.logger, { cacheMs: 0, now: env.now });
    expect(await privacy.optedOut("m1")).toBe(false);
    // Another shard's opt-out is seen from the very next message.
    await env.keyv.set("privacy:m1", { v: 2, optedOut: true, at: 1 });
    expect(await privacy.optedOut("m1")).toBe(true);
    await privacy.set("m2", false);
    expect(await privacy.optedOut("m2")).toBe(false);
    env.store.down = true;
    expect(await privacy.optedOut("m1")).toBe(true);
    expect(await privacy.optedOut("m2")).toBe(false);
  });

  it("PrivacyStore: a member whose choice cannot be read and was never read counts as opted out", async () => {
    const env = setup();
    const privacy = new PrivacyStore(env.keyv, env.logger, { cacheMs: 0, now: env.now });
    env.store.down = true;
    expect(await privacy.optedOut("never-read")).toBe(true);
  });

  it("PrivacyStore: the cache is bounded; a member dropped from it fails closed", async () => {
    const env = setup();
    const privacy = new PrivacyStore(env.keyv, env.logger, { cacheMs: 0, cacheSize: 2, now: env.now });
    for (const member of ["m1", "m2", "m3"]) expect(await privacy.optedOut(member)).toBe(false);
    env.store.down = true;
    expect(await privacy.optedOut("m1")).toBe(true);
    expect(await privacy.optedOut("m3")).toBe(false);
  });
});
