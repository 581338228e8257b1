import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type KeyvSqlite from "@keyv/sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/platform/logger.js";
import { DAY_MS } from "../src/platform/time.js";
import { type HistoryBackend, HistoryStore, type HistoryTurn } from "../src/store/history.js";
import { INDEX } from "../src/store/idIndex.js";
import { MemberData } from "../src/store/memberData.js";
import { ModerationStore } from "../src/store/moderation.js";
import { openStore, type Store } from "../src/store/openStore.js";
import { PrivacyStore } from "../src/store/privacy.js";
import { SettingsStore } from "../src/store/settings.js";
import { CLOCK_SKEW_MS, type Tombstones } from "../src/store/tombstones.js";
import type { TurnLog } from "../src/store/turnLog.js";
import { RedisServer } from "../testkit/redis.js";
import { waitUntil } from "../testkit/waitUntil.js";
import { storeRecords } from "./support/storeRecords.js";

const logger = createLogger({ level: "silent" });
const CHANNEL = "810000000000000001";
const GUILD = "820000000000000002";
const MEMBER = "830000000000000003";
const OTHER = "840000000000000004";

const turn = (memberId: string, text: string, at = Date.now()): HistoryTurn => ({
  role: "user",
  text,
  at,
  memberId,
});
/** What one process deletes with: its member data, over its history and a store. */
const memberDataOver = (store: Store, history: HistoryStore) =>
  new MemberData({
    store,
    history,
    privacy: new PrivacyStore(store.keyv, logger),
    settings: new SettingsStore(store.keyv, logger),
    moderation: new ModerationStore(store.keyv, logger),
    retentionDays: 30,
    logger,
  });
const textsIn = async (store: Store, channelId = CHANNEL) =>
  (((await store.turns.read(channelId)) ?? []) as Array<{ text: string }>).map((stored) => stored.text);

describe("deletes across shards: one Redis, two processes' history", () => {
  let redis: RedisServer;
  let deleter: Store;
  let buffering: Store;
  beforeAll(async () => {
    redis = await RedisServer.start();
    deleter = await openStore(redis.url, logger);
    buffering = await openStore(redis.url, logger);
  });
  afterAll(async () => {
    await deleter?.close();
    await buffering?.close();
    await redis?.stop();
  });

  it("turns another process buffered during an outage are not written back after the member's deletion", async () => {
    const one = new HistoryStore(deleter, { maxTurns: 50 }, logger);
    // The other process retries only when told to: the test decides when its buffer reaches the store.
    const other = new HistoryStore(buffering, { maxTurns: 50, retryMs: 3_600_000 }, logger);
    await one.append(CHANNEL, [turn(MEMBER, "said before"), turn(OTHER, "other said before")], GUILD);
    expect(await textsIn(deleter)).toEqual(["said before", "other said before"]);

    await redis.stop();
    await other.append(
      CHANNEL,
      [turn(MEMBER, "said during the outage"), turn(OTHER, "other said during the outage")],
      GUILD,
    );
    expect(other.bufferedTurns).toBe(2);

    await redis.restart();
    await waitUntil(() => deleter.reachable && buffering.reachable, {
      timeoutMs: 20_000,
      failure: () => "the stores did not reconnect to Redis",
    });
    expect((await memberDataOver(deleter, one).delete(MEMBER)).turns).toBe(1);
    expect(await textsIn(deleter)).toEqual(["other said before"]);

    // The other process writes what it held once the store is back: everything but the deleted member's turn.
    await other.close();
    expect(other.bufferedTurns).toBe(0);
    expect(await textsIn(deleter)).toEqual(["other said before", "other said during the outage"]);
    expect(await deleter.index.get(INDEX.memberChannels(MEMBER))).toEqual([]);
    // Never written back at all, not even for a moment: Redis's append-only file has every write it took.
    const aof = () => redis.appendOnlyBytes();
    expect((await aof()).includes("other said during the outage")).toBe(true);
    expect((await aof()).includes('"text":"said during the outage"')).toBe(false);
    // What the member writes after the deletion (and the clocks' allowance) is theirs to keep.
    await one.append(CHANNEL, [turn(MEMBER, "said after", Date.now() + CLOCK_SKEW_MS + 1)], GUILD);
    expect(await textsIn(deleter)).toContain("said after");
  });
});

/** A store of the test's own, and how to remove it. */
const BACKENDS = [
  {
    name: "SQLite",
    async open() {
      const dir = await mkdtemp(join(tmpdir(), "moodbot-tomb-"));
      return {
        url: `sqlite://${join(dir, "bot.sqlite")}`,
        remove: () => rm(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: "Redis",
    async open() {
      const server = await RedisServer.start();
      return { url: server.url, remove: () => server.stop() };
    },
  },
];

describe.each(BACKENDS)("tombstones on $name", (backend) => {
  let storeUrl: string;
  let remove: () => Promise<void>;
  let store: Store;
  beforeAll(async () => {
    ({ url: storeUrl, remove } = await backend.open());
    store = await openStore(storeUrl, logger);
  });
  afterAll(async () => {
    await store?.close();
    await remove?.();
  });

  it("a reply written while the member was being deleted is taken back, with its index entry", async () => {
    const deleting = new HistoryStore(store, { maxTurns: 50 }, logger);
    // The member is deleted by another writer between this write's tombstone check and its append: the race a
    // check before the write alone would lose.
    let raced = false;
    const racing: Tombstones = {
      mark: (memberId, at, ttlMs) => store.tombstones.mark(memberId, at, ttlMs),
      deletedAt: async (memberIds) => {
        const before = await store.tombstones.deletedAt(memberIds);
        if (!raced && memberIds.includes(MEMBER)) {
          raced = true;
          await memberDataOver(store, deleting).delete(MEMBER);
        }
        return before;
      },
    };
    const backend: HistoryBackend = { turns: store.turns, index: store.index, tombstones: racing };
    const writing = new HistoryStore(backend, { maxTurns: 50 }, logger);
    const asked = Date.now() - 1_000;
    await writing.append(
      CHANNEL,
      [turn(MEMBER, "asked before the delete", asked), turn(OTHER, "someone else", asked)],
      GUILD,
    );
    expect(raced).toBe(true);
    expect(await textsIn(store)).toEqual(["someone else"]);
    expect(await store.index.get(INDEX.memberChannels(MEMBER))).toEqual([]);
    expect(await store.index.get(INDEX.memberChannels(OTHER))).toEqual([CHANNEL]);
  });

  it("the bot's reply to a turn from before the deletion is not written, however late the reply finished", async () => {
    const history = new HistoryStore(store, { maxTurns: 50 }, logger);
    const channel = "811000000000000011";
    const asked = Date.now() - 1_000;
    await memberDataOver(store, history).delete(MEMBER);
    // The reply streamed for a minute after the member asked, and finished long after their deletion.
    await history.append(
      channel,
      [
        { ...turn(MEMBER, "asked before the delete", asked), messageId: "900000000000000001" },
        {
          role: "assistant",
          text: "the reply to it",
          at: Date.now() + 60_000,
          memberId: MEMBER,
          messageId: "900000000000000001",
        },
        turn(OTHER, "someone else, later", Date.now() + 60_000),
      ],
      GUILD,
    );
    expect(await textsIn(store, channel)).toEqual(["someone else, later"]);
    expect(await store.index.get(INDEX.memberChannels(MEMBER))).not.toContain(channel);
  });

  it("a mood count recorded while the member was being deleted is taken back, with its index entries", async () => {
    const member = { guildId: GUILD, memberId: "861000000000000016" };
    // The deletion lands between the count's tombstone check and its writes: the race a check before alone loses.
    let raced = false;
    let deleting: MemberData | undefined;
    const racing: Store = {
      ...store,
      tombstones: {
        mark: (memberId, at, ttlMs) => store.tombstones.mark(memberId, at, ttlMs),
        deletedAt: async (memberIds) => {
          const before = await store.tombstones.deletedAt(memberIds);
          if (!raced && memberIds.includes(member.memberId)) {
            raced = true;
            await deleting?.delete(member.memberId);
          }
          return before;
        },
      },
    };
    const over = (backendStore: Store) =>
      new MemberData({
        store: backendStore,
        history: new HistoryStore(backendStore, { maxTurns: 10 }, logger),
        privacy: new PrivacyStore(store.keyv, logger),
        settings: new SettingsStore(store.keyv, logger),
        moderation: new ModerationStore(store.keyv, logger),
        retentionDays: 30,
        logger,
      });
    deleting = over(store);
    await over(racing).recordMood(member, "positive", Date.now() - 1_000);
    expect(raced).toBe(true);
    expect(await deleting.memberMood(member, 1)).toEqual([{ positive: 0, negative: 0, neutral: 0 }]);
    expect(await store.index.get(INDEX.guildMembers(GUILD))).not.toContain(member.memberId);
    expect(await store.index.get(INDEX.memberGuilds(member.memberId))).toEqual([]);
  });

  it("a mood count from before the member's deletion (a message still queued) is not recorded; one from after is", async () => {
    const memberData = new MemberData({
      store,
      history: new HistoryStore(store, { maxTurns: 10 }, logger),
      privacy: new PrivacyStore(store.keyv, logger),
      settings: new SettingsStore(store.keyv, logger),
      moderation: new ModerationStore(store.keyv, logger),
      retentionDays: 30,
      logger,
    });
    const member = { guildId: GUILD, memberId: "850000000000000005" };
    const today = () => memberData.memberMood(member, 1);
    const queuedAt = Date.now() - 1_000;
    await memberData.recordMood(member, "positive", queuedAt - 1_000);
    expect(await today()).toEqual([{ positive: 1, negative: 0, neutral: 0 }]);
    expect(await store.index.get(INDEX.guildMembers(GUILD))).toContain(member.memberId);

    await memberData.delete(member.memberId);
    expect(await today()).toEqual([{ positive: 0, negative: 0, neutral: 0 }]);
    await memberData.recordMood(member, "negative", queuedAt);
    expect(await today()).toEqual([{ positive: 0, negative: 0, neutral: 0 }]);
    expect(await store.index.get(INDEX.guildMembers(GUILD))).not.toContain(member.memberId);
    expect(await store.index.get(INDEX.memberGuilds(member.memberId))).toEqual([]);

    await memberData.recordMood(member, "neutral", Date.now() + CLOCK_SKEW_MS + 1);
    expect(await today()).toEqual([{ positive: 0, negative: 0, neutral: 1 }]);
    expect(await store.index.get(INDEX.guildMembers(GUILD))).toContain(member.memberId);
  });

  it("a deletion the store fails midway throws, and leaves the index leading to everything still stored", async () => {
    const member = "870000000000000007";
    const first = "890000000000000009";
    const second = "880000000000000008";
    const history = new HistoryStore(store, { maxTurns: 10 }, logger);
    await history.append(first, [turn(member, "in the first channel")], GUILD);
    await history.append(second, [turn(member, "in the second channel")], GUILD);
    expect(await store.index.get(INDEX.memberChannels(member))).toEqual([first, second].sort());

    // The store goes away after the first channel's removal.
    let removals = 0;
    const failing: TurnLog = {
      read: (channelId) => store.turns.read(channelId),
      append: (channelId, turns, limits) => store.turns.append(channelId, turns, limits),
      remove: async (channelId, drop) => {
        removals++;
        if (removals > 1) throw new Error("the store went away");
        return store.turns.remove(channelId, drop);
      },
      expireAt: (channelId, at) => store.turns.expireAt(channelId, at),
      clear: (channelId) => store.turns.clear(channelId),
      channels: () => store.turns.channels(),
    };
    const broken = new HistoryStore({ ...store, turns: failing }, { maxTurns: 10 }, logger);
    await expect(memberDataOver(store, broken).delete(member)).rejects.toThrow("the store went away");
    const left = [...(await textsIn(store, first)), ...(await textsIn(store, second))];
    expect(left).toHaveLength(1);
    expect(await store.index.get(INDEX.memberChannels(member))).toEqual([first, second].sort());

    // Asked again with the store back, the deletion finds what was left.
    expect((await memberDataOver(store, history).delete(member)).turns).toBe(1);
    expect([...(await textsIn(store, first)), ...(await textsIn(store, second))]).not.toContainEqual(
      expect.stringContaining("channel"),
    );
    expect(await store.index.get(INDEX.memberChannels(member))).toEqual([]);
  });

  it("is keyed by a keyed hash of the id, never the id, with a key of its own per store, and expires with the retention", async () => {
    const deleted = "860000000000000006";
    const at = Date.now() - 12_345;
    const tombstonesNow = async () =>
      (await storeRecords(storeUrl)).filter((record) => record.key.includes("tombstone:"));
    const before = new Set((await tombstonesNow()).map((record) => record.key));
    await store.tombstones.mark(deleted, at, 30 * DAY_MS);
    expect((await store.tombstones.deletedAt([deleted, OTHER])).get(deleted)).toBe(at);
    const added = (await tombstonesNow()).filter((record) => !before.has(record.key));
    expect(added).toHaveLength(1);
    const [tombstone] = added;
    expect(tombstone?.text).toContain(`"at":${at}`);
    expect(tombstone?.key).toMatch(/tombstone:[0-9a-f]{64}$/);
    // Neither the id nor its plain hash: without the store's key, the tombstone says nothing about who it is.
    expect(`${tombstone?.key}${tombstone?.text}`).not.toContain(deleted);
    expect(tombstone?.key).not.toContain(createHash("sha256").update(deleted).digest("hex"));
    expect(tombstone?.text).toMatch(/"expires":\d+/);
    const expires = Number(/"expires":(\d+)/.exec(tombstone?.text ?? "")?.[1]);
    expect(Math.abs(expires - (Date.now() + 30 * DAY_MS))).toBeLessThan(60_000);

    // Another store makes a key of its own: the same member gets another tombstone key there.
    const dir = await mkdtemp(join(tmpdir(), "moodbot-tomb-other-"));
    const elsewhere = await openStore(`sqlite://${join(dir, "bot.sqlite")}`, logger);
    try {
      await elsewhere.tombstones.mark(deleted, at, DAY_MS);
      const [there] = (await storeRecords(`sqlite://${join(dir, "bot.sqlite")}`)).filter((record) =>
        record.key.includes("tombstone:"),
      );
      expect(there?.key.slice(-64)).toMatch(/^[0-9a-f]{64}$/);
      expect(there?.key.slice(-64)).not.toBe(tombstone?.key.slice(-64));
    } finally {
      await elsewhere.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("a deletion while the store cannot be written", () => {
  it("drops the member's turns from what this process holds at once, though the store refuses the deletion", async () => {
    const dir = await mkdtemp(join(tmpdir(), "moodbot-tomb-held-"));
    const store = await openStore(`sqlite://${join(dir, "bot.sqlite")}`, logger);
    const history = new HistoryStore(store, { maxTurns: 50, retryMs: 50 }, logger);
    const sqlite = store.keyv.store as KeyvSqlite;
    try {
      await sqlite.query("PRAGMA query_only = ON");
      await history.append(
        CHANNEL,
        [turn(MEMBER, "held for the store"), turn(OTHER, "other, held too")],
        GUILD,
      );
      expect(history.bufferedTurns).toBe(2);

      // The tombstone cannot be written, so the deletion fails; what waits here for the store is gone already.
      await expect(memberDataOver(store, history).delete(MEMBER)).rejects.toThrow();
      expect(history.bufferedTurns).toBe(1);
      expect((await history.get(CHANNEL)).map((stored) => stored.text)).toEqual(["other, held too"]);

      await sqlite.query("PRAGMA query_only = OFF");
      await waitUntil(() => history.bufferedTurns === 0, { timeoutMs: 10_000 });
      expect(await textsIn(store)).toEqual(["other, held too"]);
    } finally {
      await history.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
