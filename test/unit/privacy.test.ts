import Keyv from "keyv";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/platform/logger.js";
import { PrivacyStore } from "../../src/store/privacy.js";

/** A Keyv store in memory that can be made to fail, as a store that went away does. */
class FlakyMap extends Map<string, unknown> {
  down = false;
  override get(key: string) {
    if (this.down) throw new Error("store unreachable");
    return super.get(key);
  }
  override set(key: string, value: unknown) {
    if (this.down) throw new Error("store unreachable");
    return super.set(key, value);
  }
}

function privacyStore() {
  const map = new FlakyMap();
  let now = 1_000_000;
  const keyv = new Keyv<unknown>({ store: map, throwOnErrors: true });
  const store = new PrivacyStore(keyv, createLogger({ level: "silent" }), { cacheMs: 1_000, now: () => now });
  return { map, keyv, store, advance: (ms: number) => (now += ms) };
}

describe("PrivacyStore", () => {
  it("stores an opt-out, and removes it on opt-in", async () => {
    const { map, store } = privacyStore();
    await store.set("1", true);
    expect(await store.optedOut("1")).toBe(true);
    expect(map.size).toBe(1);
    await store.set("1", false);
    expect(await store.optedOut("1")).toBe(false);
    expect(map.size).toBe(0);
  });

  it("fails closed: a member whose choice cannot be read counts as opted out", async () => {
    const { map, store } = privacyStore();
    map.down = true;
    expect(await store.optedOut("never-seen")).toBe(true);
  });

  it("keeps to a remembered choice while the store is away, even once the cache has gone stale", async () => {
    const { map, store, advance } = privacyStore();
    expect(await store.optedOut("2")).toBe(false);
    map.down = true;
    advance(5_000);
    expect(await store.optedOut("2")).toBe(false);
  });

  it("reads the store again once the cache is stale: another process's change arrives", async () => {
    const { keyv, store, advance } = privacyStore();
    expect(await store.optedOut("3")).toBe(false);
    // What another shard writes lands in the same store; here, the same key written directly.
    await keyv.set("privacy:3", { optedOut: true, at: 1 });
    expect(await store.optedOut("3")).toBe(false);
    advance(1_001);
    expect(await store.optedOut("3")).toBe(true);
  });

  it("treats a malformed stored choice as an opt-out", async () => {
    const { keyv, store } = privacyStore();
    await keyv.set("privacy:4", "yes please");
    expect(await store.optedOut("4")).toBe(true);
  });
});
