import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/platform/logger.js";
import { DAY_MS, HOUR_MS } from "../src/platform/time.js";
import { HistoryStore } from "../src/store/history.js";
import { INDEX, INDEX_SLACK_MS } from "../src/store/idIndex.js";
import { StoreMaintenance } from "../src/store/maintenance.js";
import { MemberData } from "../src/store/memberData.js";
import { ModerationStore } from "../src/store/moderation.js";
import { KEEP_HOURS } from "../src/store/moodTally.js";
import { openStore, type Store } from "../src/store/openStore.js";
import { PrivacyStore } from "../src/store/privacy.js";
import { createRedisClient } from "../src/store/redisClient.js";
import { SettingsStore } from "../src/store/settings.js";
import { RedisServer } from "../testkit/redis.js";
import { type RawRecord, storeRecords } from "./support/storeRecords.js";

const logger = createLogger({ level: "silent" });
const RETENTION_DAYS = 30;

/** Each backend on a store of its own: the sweep runs on an injected clock far ahead, which would expire others' data. */
interface Backend {
  readonly name: string;
  open(): Promise<{ url: string; files: string[]; close: () => Promise<void> }>;
}

const BACKENDS: Backend[] = [
  {
    name: "SQLite",
    async open() {
      const dir = await mkdtemp(join(tmpdir(), "moodbot-retention-"));
      const file = join(dir, "bot.sqlite");
      return {
        url: `sqlite://${file}`,
        files: [file, `${file}-wal`, `${file}-shm`],
        close: () => rm(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: "Redis",
    async open() {
      const server = await RedisServer.start();
      return { url: server.url, files: [], close: () => server.stop() };
    },
  },
];

/** The kind of a record, by its key without the namespace: `member-mood`, `mood`, `index`, `tombstone`, … */
const kindOf = (record: RawRecord) =>
  record.key.replace(/^moodbot::moodbot:|^moodbot:/, "").replace(/:.*$/, "");

describe.each(BACKENDS)("retention on $name", (backend) => {
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

  it("every record with a retention leaves the store when it ends, on an injected clock: channel counts after 8 days, a member's after CHAT_HISTORY_TTL_DAYS", async () => {
    const start = Date.now();
    let now = start;
    const clock = () => now;
    const history = new HistoryStore(
      store,
      { maxTurns: 12, retentionMs: RETENTION_DAYS * DAY_MS, now: clock },
      logger,
    );
    const privacy = new PrivacyStore(store.keyv, logger);
    const memberData = new MemberData({
      store,
      history,
      privacy,
      settings: new SettingsStore(store.keyv, logger),
      moderation: new ModerationStore(store.keyv, logger),
      retentionDays: RETENTION_DAYS,
      logger,
      now: clock,
    });
    const maintenance = new StoreMaintenance(store, history, logger, { now: clock });
    const [guildId, channelId, memberId, deletedId, optedOutId] = [
      "710000000000000001",
      "720000000000000002",
      "730000000000000003",
      "740000000000000004",
      "750000000000000005",
    ];
    await memberData.recordMood({ guildId, memberId }, "positive", start);
    await store.moods.record(channelId, "positive", start);
    await history.append(channelId, [{ role: "user", text: "kept a while", at: start, memberId }], guildId);
    await memberData.delete(deletedId);
    await privacy.set(optedOutId, true);

    const kinds = async () => new Set((await storeRecords(opened.url)).map(kindOf));
    const withRetention = [
      "member-mood",
      "mood",
      "index",
      "tombstone",
      backend.name === "Redis" ? "turns" : "history",
    ];
    expect([...(await kinds())]).toEqual(expect.arrayContaining([...withRetention, "privacy"]));
    if (backend.name === "Redis") {
      // Redis expires whole keys itself: every record with a retention carries a TTL no longer than it.
      const client = createRedisClient(opened.url);
      await client.connect();
      try {
        for (const record of await storeRecords(opened.url)) {
          const ttl = await client.pTTL(record.key);
          const limit = {
            mood: KEEP_HOURS * HOUR_MS,
            "member-mood": RETENTION_DAYS * DAY_MS,
            index: RETENTION_DAYS * DAY_MS + INDEX_SLACK_MS,
            tombstone: RETENTION_DAYS * DAY_MS,
            turns: RETENTION_DAYS * DAY_MS,
          }[kindOf(record)];
          if (limit === undefined) continue;
          expect({ key: record.key, expires: ttl > 0 && ttl <= limit }).toEqual({
            key: record.key,
            expires: true,
          });
        }
      } finally {
        await client.quit();
      }
    }

    // A sweep now keeps everything: nothing has expired yet.
    await maintenance.runNow();
    expect([...(await kinds())]).toEqual(expect.arrayContaining([...withRetention, "privacy"]));

    // Nine days on, the channel's hourly counts (kept 8 days) are gone; the member's daily counts are not.
    now = start + 9 * DAY_MS;
    if (backend.name === "SQLite") {
      await maintenance.runNow();
      expect(await kinds()).not.toContain("mood");
      expect(await kinds()).toContain("member-mood");
    }

    // Past the retention (and the index's hour of slack), nothing with a retention is left; the opt-out stays.
    now = start + RETENTION_DAYS * DAY_MS + INDEX_SLACK_MS + HOUR_MS;
    await maintenance.runNow();
    if (backend.name === "SQLite") {
      // The opt-out and the tombstones' key have no retention: the opt-out holds until the member opts in.
      expect([...(await kinds())].sort()).toEqual(["privacy", "tombstone-key"]);
      // Gone from disk, not only from the table: no byte of the file or its log holds the ids.
      const bytes = Buffer.concat(
        await Promise.all(opened.files.map((file) => readFile(file).catch(() => Buffer.alloc(0)))),
      );
      for (const id of [memberId, channelId, guildId])
        expect({ id, onDisk: bytes.includes(id) }).toEqual({ id, onDisk: false });
      expect(bytes.includes(optedOutId)).toBe(true);
    } else {
      // Redis's own clock cannot be moved: the index entries, which expire inside their sets, are what the sweep
      // removes, and a set left empty is gone.
      expect((await storeRecords(opened.url)).filter((record) => kindOf(record) === "index")).toEqual([]);
    }
  });

  it("an index entry lives as long as the data it leads to, renewed by each add; the sweep and a removal take entries out", async () => {
    const now = Date.now();
    const set = INDEX.guildMembers("760000000000000006");
    await store.index.add(set, ["1001", "1002"], DAY_MS);
    await store.index.add(set, ["1003"], 10 * DAY_MS);
    expect(await store.index.get(set)).toEqual(["1001", "1002", "1003"]);
    // A day and its hour of slack later, the first two have expired; the third has not.
    expect(await store.index.sweep(now + DAY_MS + INDEX_SLACK_MS + HOUR_MS)).toBe(2);
    expect(await store.index.get(set)).toEqual(["1003"]);
    await store.index.add(set, ["1001"], DAY_MS);
    await store.index.remove(set, ["1003"]);
    expect(await store.index.get(set)).toEqual(["1001"]);
    expect(await store.index.sweep(now)).toBe(0);
    await store.index.remove(set, ["1001"]);
    expect(await store.index.get(set)).toEqual([]);
    expect((await storeRecords(opened.url)).filter((record) => record.key.includes(set))).toEqual([]);
  });
});
