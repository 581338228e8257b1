import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/platform/logger.js";
import { openStore, type Store } from "../src/store/openStore.js";
import { createRedisClient, type RedisClient } from "../src/store/redisClient.js";
import { LogCapture } from "../testkit/harness.js";
import { RedisServer } from "../testkit/redis.js";
import { waitUntil } from "../testkit/waitUntil.js";

/**
 * Managed Redis forbids BGREWRITEAOF by ACL as well as by renaming it (the end-to-end privacy test renames it):
 * the refusal is told as "refused", logged once, and never retried.
 */
describe("a Redis whose ACL forbids BGREWRITEAOF", () => {
  let redis: RedisServer;
  let admin: RedisClient;
  let store: Store;
  const logs = new LogCapture();
  beforeAll(async () => {
    redis = await RedisServer.start();
    admin = createRedisClient(redis.url);
    await admin.connect();
    await admin.sendCommand([
      "ACL",
      "SETUSER",
      "moodbot",
      "on",
      ">limited",
      "~*",
      "&*",
      "+@all",
      "-bgrewriteaof",
    ]);
    const limited = redis.url.replace("redis://", "redis://moodbot:limited@");
    store = await openStore(limited, createLogger({ level: "info", destination: logs.stream }));
  });
  afterAll(async () => {
    await store?.close();
    await admin?.quit();
    await redis?.stop();
  });

  it("answers refused, logs it once, leaves nothing due, and asks again only a day on", async () => {
    const refused = async () =>
      Number(/errorstat_NOPERM:count=(\d+)/.exec(await admin.info("errorstats"))?.[1] ?? 0);
    expect(await refused()).toBe(0);
    expect(await store.eraseDeleted()).toBe("refused");
    expect(await refused()).toBe(1);
    expect(await store.eraseDue()).toBeUndefined();
    // Later deletions are told the same without asking the server again.
    expect(await store.eraseDeleted()).toBe("refused");
    expect(await store.eraseDue()).toBeUndefined();
    expect(await refused()).toBe(1);
    // A day on (the refusal forgotten, the window over), a deletion asks once more: refused, and not logged again.
    await admin.del(["moodbot:aof-rewrite:refused", "moodbot:aof-rewrite:last"]);
    expect(await store.eraseDeleted()).toBe("refused");
    expect(await refused()).toBe(2);
    expect(await store.eraseDue()).toBeUndefined();
    const lines = logs.lines.filter((line) => String(line.msg).includes("BGREWRITEAOF"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 40,
      why: "refused",
      err: { message: expect.stringContaining("NOPERM") },
    });
  });
});

describe("a Redis that fails right after a deletion", () => {
  let redis: RedisServer;
  let store: Store;
  beforeAll(async () => {
    redis = await RedisServer.start();
    store = await openStore(redis.url, createLogger({ level: "silent" }));
  });
  afterAll(async () => {
    await store?.close();
    await redis?.stop();
  });

  it("keeps the rewrite owed, and the store's maintenance starts it once Redis answers again", async () => {
    await redis.stop();
    // The deletion itself went through before Redis went away; marking the rewrite as due fails.
    await expect(store.eraseDeleted()).rejects.toThrow();
    await redis.restart();
    await waitUntil(() => store.reachable, {
      timeoutMs: 20_000,
      failure: () => "the store did not reconnect",
    });
    expect(await store.eraseDue()).toBe("rewriting");
    // Owed once: the next round has nothing left to do.
    expect(await store.eraseDue()).toBeUndefined();
  });
});
