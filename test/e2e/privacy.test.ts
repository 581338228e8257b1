import { randomInt } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DAY_MS } from "../../src/platform/time.js";
import { INDEX } from "../../src/store/idIndex.js";
import type { MemberExport } from "../../src/store/memberData.js";
import { dayOf } from "../../src/store/moodTally.js";
import { createRedisClient } from "../../src/store/redisClient.js";
import { TOMBSTONE_SECRET_KEY } from "../../src/store/tombstones.js";
import { WORDING } from "../../src/wording/wording.js";
import type { FakeUser, RecordedRequest } from "../../testkit/fakeDiscord.js";
import { type BotHarness, startBotHarness } from "../../testkit/harness.js";
import { RedisServer, sharedRedis } from "../../testkit/redis.js";
import { waitUntil } from "../../testkit/waitUntil.js";
import { STORE_BACKENDS } from "../support/storeBackends.js";
import { type RawRecord, recordsHolding, storeRecords } from "../support/storeRecords.js";

const body = (request: RecordedRequest | undefined) => (request?.body ?? {}) as Record<string, unknown>;
const originalOf = (token: string) => new RegExp(`/${token}/messages/@original$`);
const reactionPath = (messageId: string) => new RegExp(`^/channels/\\d+/messages/${messageId}/reactions/`);

/**
 * A member of the test's own. Two fake Discords started in the same millisecond hand out the same snowflakes, and
 * a shared Redis holds other suites' data: random low bits keep this member's id to this test.
 */
function memberOf(h: BotHarness, username = "dana"): FakeUser {
  const id = (BigInt(h.discord.snowflake()) ^ (BigInt(randomInt(1, 2 ** 21)) << 1n)).toString();
  return { id, username };
}

/** Runs /privacy <sub> as a member and returns the private answer (deferred, then edited in). */
async function privacy(
  h: BotHarness,
  sub: string,
  user: FakeUser,
  locale?: string,
): Promise<Record<string, unknown>> {
  const { token } = h.discord.sendSlashCommand({
    name: "privacy",
    user,
    options: [{ name: sub, type: 1 }],
    ...(locale === undefined ? {} : { locale }),
  });
  const [callback] = await h.discord.waitForRequests("POST", new RegExp(`/${token}/callback$`));
  expect(body(callback)).toMatchObject({ type: 5, data: { flags: 64 } });
  const [edit] = await h.discord.waitForRequests("PATCH", originalOf(token));
  return body(edit);
}

async function exported(h: BotHarness, user: FakeUser): Promise<MemberExport> {
  const answer = await privacy(h, "export", user);
  expect(answer.files).toEqual([`moodbot-data-${user.id}.json`]);
  const texts = answer.fileTexts as Record<string, string>;
  return JSON.parse(texts[`moodbot-data-${user.id}.json`] ?? "") as MemberExport;
}

/** A mention from a member, answered in full (and stored, unless they opted out); returns the message's id. */
async function mention(h: BotHarness, user: FakeUser, content: string, channelId?: string): Promise<string> {
  const id = h.discord.sendMessage({
    content: `<@${h.discord.botUser.id}> ${content}`,
    author: user,
    mentionBot: true,
    ...(channelId === undefined ? {} : { channelId }),
  });
  await h.outcomes.next("replied", { messageId: id }, 60_000);
  return id;
}

async function storedTexts(h: BotHarness, channelId: string): Promise<string[]> {
  const turns = ((await h.store.turns.read(channelId)) ?? []) as Array<{ text: string }>;
  return turns.map((turn) => turn.text);
}

/** Waits until the member's mood count today reaches `count` (tallies are recorded without waiting). */
async function countedMoods(h: BotHarness, user: FakeUser, count: number): Promise<void> {
  const member = { guildId: h.discord.guildId, memberId: user.id };
  await waitUntil(
    async () => {
      const [today] = await h.app.memberData.memberMood(member, 1);
      return (today?.positive ?? 0) + (today?.negative ?? 0) + (today?.neutral ?? 0) >= count;
    },
    { timeoutMs: 20_000, failure: () => `no ${count} mood counts for ${user.id}` },
  );
}

/** A record's key without the store's namespace (Keyv on Redis adds its own, twice). */
const bareKey = (key: string) => key.replace(/^moodbot::moodbot:|^moodbot:/, "");

/** Whether the export shows this record, one that holds the member's id; a kind it does not know is a miss. */
function exportShows(record: RawRecord, data: MemberExport): boolean {
  const key = bareKey(record.key);
  const turns = /^(?:history|turns):(.+)$/.exec(key);
  if (turns) return data.history[turns[1] ?? ""] !== undefined || data.replies[turns[1] ?? ""] !== undefined;
  const tally = /^member-mood:(\d+):\d+:(\d+)$/.exec(key);
  if (tally) {
    const day = new Date(Number(tally[2]) * DAY_MS).toISOString().slice(0, 10);
    return data.moodTallies[tally[1] ?? ""]?.[day] !== undefined;
  }
  if (/^index:member-channels:\d+$/.test(key)) return data.index.channels.length > 0;
  if (/^index:member-guilds:\d+$/.test(key)) return data.index.servers.length > 0;
  const listed = /^index:guild-members:(\d+)$/.exec(key);
  if (listed) return data.index.listedInServers.includes(listed[1] ?? "");
  if (/^privacy:\d+$/.test(key)) return data.settings.optedOut;
  return false;
}

describe.each(STORE_BACKENDS)("privacy on $name", ({ setUp }) => {
  let h: BotHarness;
  let tearDown: () => Promise<void>;
  const newMember = () => memberOf(h);

  beforeAll(async () => {
    const backend = await setUp();
    tearDown = backend.tearDown;
    h = await startBotHarness({ env: { STORE_URL: backend.url }, withTasks: true });
  });
  afterAll(async () => {
    await h?.close();
    await tearDown?.();
  });

  it("/privacy show says what is stored, for how long, how to opt out, and that an opt-out survives a delete", async () => {
    const member = newMember();
    await mention(h, member, "hello there");
    const answer = String((await privacy(h, "show", member)).content);
    expect(answer.length).toBeLessThanOrEqual(2000);
    expect(answer).toContain("for 30 days");
    expect(answer).toContain("Now: 1 of your messages in 1 channels");
    expect(answer).toContain("/privacy opt-out");
    expect(answer).toContain("An opt-out stays after `/privacy delete`");
    expect(answer).toContain("`/privacy opt-in` removes it");
    // Moderation is the server's rule: the member is told it goes on after an opt-out.
    expect(answer).toContain("still checked after you opt out");
    const zh = String((await privacy(h, "show", member, "zh-CN")).content);
    expect(zh.length).toBeLessThanOrEqual(2000);
    expect(zh).toContain("保存 30 天");
    expect(zh).toContain("退出选择在 `/privacy delete` 之后仍然保留");
    expect(zh).toContain("`/privacy opt-in` 会删除它");
  });

  it("an opted-out member gets no reaction and no count, is answered with nothing stored, and is left out of /summarize", async () => {
    const member = newMember();
    expect(String((await privacy(h, "opt-out", member)).content)).toContain("you are opted out");

    const plain = h.discord.sendMessage({ content: "what a lovely day", author: member });
    await h.outcomes.next("skipped", { messageId: plain, reason: "member opted out" });
    const asked = await mention(h, member, "remember that my cat is called Biscuit");
    await h.outcomes.next("skipped", { messageId: asked, reason: "member opted out" });
    expect(h.outcomes.all("stored", { messageId: asked })).toEqual([]);
    expect(await storedTexts(h, h.discord.channelId)).not.toContainEqual(expect.stringContaining("Biscuit"));
    expect(h.discord.requestsMatching("PUT", reactionPath(asked))).toEqual([]);

    const bob = newMember();
    const secret = `opted-out plans ${randomInt(1e9)}`;
    const open = `everyone's plans ${randomInt(1e9)}`;
    h.discord.sendMessage({ content: secret, author: member });
    h.discord.sendMessage({ content: open, author: bob });
    const task = h.discord.sendSlashCommand({
      name: "summarize",
      options: [{ name: "count", type: 4, value: 2 }],
    });
    await h.discord.waitForRequests("PATCH", originalOf(task.token));
    // What the model was given for this /summarize: the other member's text, never the opted-out member's.
    const [input] = h.model
      .callsOf("task")
      .filter((call) => call.task === "summarize" && call.input.includes(open))
      .map((call) => call.input);
    expect(input).toContain(open);
    expect(input).not.toContain(secret);

    const stored = await h.app.memberData.export(member.id);
    expect(stored.history).toEqual({});
    expect(stored.moodTallies).toEqual({});
    expect(stored.settings.optedOut).toBe(true);

    expect(String((await privacy(h, "opt-in", member)).content)).toContain("opted in again");
    const after = h.discord.sendMessage({ content: "back again", author: member });
    await h.outcomes.next("reacted", { messageId: after });
  });

  it("/privacy export lists every kind of record the store holds about the member", async () => {
    const member = newMember();
    const asked = await mention(h, member, "my favourite colour is teal");
    await mention(h, member, "and teal again", h.discord.secondChannelId);
    await countedMoods(h, member, 2);
    await privacy(h, "opt-out", member);

    const data = await exported(h, member);
    expect(data.memberId).toBe(member.id);
    expect(data.history[h.discord.channelId]).toEqual([
      { at: expect.any(String), messageId: asked, author: "dana", text: "my favourite colour is teal" },
    ]);
    expect(data.replies[h.discord.channelId]).toEqual([
      { at: expect.any(String), messageId: asked, text: expect.any(String) },
    ]);
    const today = new Date(dayOf(Date.now()) * DAY_MS).toISOString().slice(0, 10);
    const counts = data.moodTallies[h.discord.guildId]?.[today];
    expect((counts?.positive ?? 0) + (counts?.negative ?? 0) + (counts?.neutral ?? 0)).toBe(2);
    expect(data.index).toEqual({
      channels: [h.discord.channelId, h.discord.secondChannelId].sort(),
      servers: [h.discord.guildId],
      listedInServers: [h.discord.guildId],
    });
    expect(data.settings).toEqual({ optedOut: true, optedOutAt: expect.any(String) });

    // Read the store itself, every key and value: each record holding the id is one the export shows.
    const records = await recordsHolding(h.config.storeUrl, member.id);
    const kinds = new Set(records.map((record) => bareKey(record.key).replace(/:.*$/, "")));
    expect([...kinds].sort()).toEqual(
      ["index", "member-mood", "privacy", h.store.kind === "redis" ? "turns" : "history"].sort(),
    );
    expect(records.filter((record) => !exportShows(record, data)).map((record) => record.key)).toEqual([]);
  });

  it("/privacy delete removes the member's turns, the replies to them, their counts and every index entry of theirs", async () => {
    const member = newMember();
    const bob = newMember();
    await mention(h, member, "first secret", h.discord.channelId);
    await mention(h, member, "second secret", h.discord.secondChannelId);
    await mention(h, bob, "bob stays");
    await countedMoods(h, member, 2);
    await countedMoods(h, bob, 1);
    const { index } = h.store;
    expect(await index.get(INDEX.guildMembers(h.discord.guildId))).toEqual(
      expect.arrayContaining([member.id, bob.id]),
    );
    expect(await index.get(INDEX.memberGuilds(member.id))).toEqual([h.discord.guildId]);
    expect(await index.get(INDEX.memberChannels(member.id))).toHaveLength(2);
    expect(await recordsHolding(h.config.storeUrl, member.id)).not.toEqual([]);

    const answer = String((await privacy(h, "delete", member)).content);
    expect(answer).toContain("Deleted: 4 turns");
    expect(answer).toContain("An opt-out, if you made one, stays");
    await h.outcomes.next("deleted", { scope: "member", id: member.id });
    const first = await storedTexts(h, h.discord.channelId);
    expect(first).not.toContainEqual(expect.stringContaining("secret"));
    expect(first).toContain("bob stays");
    expect(await storedTexts(h, h.discord.secondChannelId)).not.toContainEqual(
      expect.stringContaining("secret"),
    );

    // The server's member list lost the member and kept the other; the member's own index sets are gone.
    const members = await index.get(INDEX.guildMembers(h.discord.guildId));
    expect(members).toContain(bob.id);
    expect(members).not.toContain(member.id);
    expect(await index.get(INDEX.memberGuilds(member.id))).toEqual([]);
    expect(await index.get(INDEX.memberChannels(member.id))).toEqual([]);
    // Nothing the store holds names the member: every key and every value, of every type.
    expect(await recordsHolding(h.config.storeUrl, member.id)).toEqual([]);

    const data = await exported(h, member);
    expect(data.history).toEqual({});
    expect(data.replies).toEqual({});
    expect(data.moodTallies).toEqual({});
    expect(data.index).toEqual({ channels: [], servers: [], listedInServers: [] });
    // The tombstone, keyed by a keyed hash of the id, is a record about the member too.
    expect(data.deletion).toEqual({ at: expect.any(String), until: expect.any(String) });
    expect(String((await privacy(h, "export", member)).content)).toBe(WORDING.en.privacy.exportedNothing);
  });

  it("an opt-out survives /privacy delete, and /privacy opt-in removes it", async () => {
    const member = newMember();
    await mention(h, member, "before the opt-out");
    await privacy(h, "opt-out", member);
    await privacy(h, "delete", member);
    await h.outcomes.next("deleted", { scope: "member", id: member.id });
    // The one record left that names the member is the opt-out.
    const left = await recordsHolding(h.config.storeUrl, member.id);
    expect(left.map((record) => bareKey(record.key))).toEqual([`privacy:${member.id}`]);
    const skipped = h.discord.sendMessage({ content: "still out", author: member });
    await h.outcomes.next("skipped", { messageId: skipped, reason: "member opted out" });

    await privacy(h, "opt-in", member);
    expect(await recordsHolding(h.config.storeUrl, member.id)).toEqual([]);
  });

  it("expired turns are never shown to the model and leave the store", async () => {
    const member = newMember();
    // The thread is a channel of its own that no other test here talks in.
    const channelId = h.discord.threadId;
    await h.store.turns.append(
      channelId,
      [
        { v: 2, role: "user", text: "ancient words", at: Date.now() - 31 * DAY_MS, memberId: member.id },
        { v: 2, role: "user", text: "recent words", at: Date.now() - DAY_MS, memberId: member.id },
      ],
      { keep: 12, ttlMs: 60_000 },
    );
    await mention(h, member, "what did I say?", channelId);
    const [prompt] = h.model
      .callsOf("chat")
      .map((call) => call.turns.map((turn) => turn.text))
      .filter((texts) => texts.some((text) => text.includes("what did I say?")));
    expect(prompt).toContainEqual(expect.stringContaining("recent words"));
    expect(prompt).not.toContainEqual(expect.stringContaining("ancient words"));

    expect(await storedTexts(h, channelId)).toContain("ancient words");
    await h.app.maintenance.runNow();
    const stored = await storedTexts(h, channelId);
    expect(stored).not.toContain("ancient words");
    expect(stored).toContain("recent words");
  });

  it("a deleted message's turn and the reply to it leave history, one by one or in bulk", async () => {
    const member = newMember();
    const first = await mention(h, member, "delete me soon");
    const second = await mention(h, member, "delete me in bulk");
    const turnsOf = async (id: string) =>
      (((await h.store.turns.read(h.discord.channelId)) ?? []) as Array<{ messageId?: string }>).filter(
        (turn) => turn.messageId === id,
      );
    expect(await turnsOf(first)).toHaveLength(2);

    h.discord.deleteMessage(first);
    await h.outcomes.next("deleted", { scope: "messages", id: first });
    expect(await turnsOf(first)).toEqual([]);
    expect(await turnsOf(second)).toHaveLength(2);

    h.discord.bulkDeleteMessages([second, h.discord.snowflake()]);
    await h.outcomes.next("deleted", { scope: "messages", id: second });
    expect(await turnsOf(second)).toEqual([]);
  });

  it("Mood of this member: the member and moderators see seven days of counts; others and opted-out members do not", async () => {
    const member = newMember();
    const peer = newMember();
    h.discord.sendMessage({ content: "today is wonderful", author: member });
    await countedMoods(h, member, 1);
    const look = async (asker: FakeUser, target: FakeUser, permissions?: string) => {
      const { token } = h.discord.sendUserCommand({
        name: "Mood of this member",
        user: asker,
        target,
        ...(permissions === undefined ? {} : { permissions }),
      });
      const [edit] = await h.discord.waitForRequests("PATCH", originalOf(token));
      return body(edit);
    };
    const own = await look(member, member, "0");
    expect(own.files).toEqual(["member-mood.png"]);
    expect(String(own.content)).toMatch(/over the last 7 days\*\*: .*1/);
    expect((await look(peer, member, "0")).content).toBe(WORDING.en.memberMood.denied);
    expect((await look(peer, member)).files).toEqual(["member-mood.png"]);

    await privacy(h, "opt-out", member);
    expect((await look(peer, member)).content).toBe(WORDING.en.memberMood.optedOut("dana"));
  });

  // Last in this block: it deletes everything the other tests stored in the fake server.
  it("/settings purge deletes everything stored for the server, its id in members' index too, only after an admin confirms", async () => {
    const member = newMember();
    await mention(h, member, "purge candidate");
    await countedMoods(h, member, 1);
    await h.app.settings.set("channel", h.discord.channelId, "language", "zh");
    expect(await h.store.index.get(INDEX.memberGuilds(member.id))).toEqual([h.discord.guildId]);
    expect(await h.store.index.get(INDEX.memberChannels(member.id))).toEqual([h.discord.channelId]);
    const { token } = h.discord.sendSlashCommand({ name: "settings", options: [{ name: "purge", type: 1 }] });
    const [ask] = await h.discord.waitForRequests("PATCH", originalOf(token));
    const row = (
      body(ask).components as Array<{ components: Array<{ custom_id: string; style: number }> }>
    )[0];
    const purge = row?.components.find((button) => button.style === 4)?.custom_id ?? "";
    expect(purge).toBe(`settings:purge:${h.discord.guildId}`);
    expect(await storedTexts(h, h.discord.channelId)).toContain("purge candidate");

    // Someone without Manage Server clicks: nothing happens to the data, and the message says why.
    const denied = h.discord.sendButtonClick({ customId: purge, permissions: "0" });
    const [deniedEdit] = await h.discord.waitForRequests("PATCH", originalOf(denied.token));
    expect(body(deniedEdit).content).toBe(WORDING.zh.settings.denied);
    expect(h.outcomes.all("deleted", { scope: "guild", id: h.discord.guildId })).toEqual([]);
    expect(await storedTexts(h, h.discord.channelId)).toContain("purge candidate");

    const confirmed = h.discord.sendButtonClick({ customId: purge });
    const [callback] = await h.discord.waitForRequests("POST", new RegExp(`/${confirmed.token}/callback$`));
    expect(body(callback).type).toBe(6);
    await h.outcomes.next("deleted", { scope: "guild", id: h.discord.guildId });
    const [done] = await h.discord.waitForRequests("PATCH", originalOf(confirmed.token));
    expect(String(body(done).content)).toContain("已删除");
    expect(body(done).components).toEqual([]);
    expect(await h.store.turns.read(h.discord.channelId)).toBeUndefined();
    expect(await h.app.settings.get("channel", h.discord.channelId)).toEqual({});
    const [today] = await h.app.memberData.memberMood({ guildId: h.discord.guildId, memberId: member.id }, 1);
    expect(today).toEqual({ positive: 0, negative: 0, neutral: 0 });
    // The member's own index no longer leads to the server or its channel: nothing names them any more.
    expect(await h.store.index.get(INDEX.memberGuilds(member.id))).toEqual([]);
    expect(await h.store.index.get(INDEX.memberChannels(member.id))).toEqual([]);
    expect(await recordsHolding(h.config.storeUrl, member.id)).toEqual([]);
  });
});

describe.each(STORE_BACKENDS)("removal from a server on $name", ({ setUp }) => {
  it("keeps a server's data through an outage, and purges it, its id in members' index too, when the bot is removed", async () => {
    const backend = await setUp();
    const h = await startBotHarness({ env: { STORE_URL: backend.url } });
    try {
      const member = memberOf(h, "erin");
      await mention(h, member, "server memories");
      await h.app.settings.set("guild", h.discord.guildId, "reactions", "off");
      await countedMoods(h, member, 1);
      expect(await h.store.index.get(INDEX.memberGuilds(member.id))).toEqual([h.discord.guildId]);
      expect(await h.store.index.get(INDEX.memberChannels(member.id))).toEqual([h.discord.channelId]);

      h.discord.removeGuild(h.discord.guildId, { outage: true });
      await h.outcomes.next("kept", { scope: "guild", id: h.discord.guildId });
      expect(await storedTexts(h, h.discord.channelId)).toContain("server memories");

      h.discord.removeGuild(h.discord.guildId);
      await h.outcomes.next("deleted", { scope: "guild", id: h.discord.guildId });
      expect(await h.store.turns.read(h.discord.channelId)).toBeUndefined();
      expect(await h.app.settings.get("guild", h.discord.guildId)).toEqual({});
      const [today] = await h.app.memberData.memberMood(
        { guildId: h.discord.guildId, memberId: member.id },
        1,
      );
      expect(today).toEqual({ positive: 0, negative: 0, neutral: 0 });
      expect(await h.store.index.get(INDEX.memberGuilds(member.id))).toEqual([]);
      expect(await h.store.index.get(INDEX.memberChannels(member.id))).toEqual([]);
      expect(await recordsHolding(h.config.storeUrl, member.id)).toEqual([]);
    } finally {
      await h.close();
      await backend.tearDown();
    }
  });
});

it("on Redis, an opt-out made through one shard process holds in another from its very next message", async () => {
  const redis = await sharedRedis();
  const [one, other] = [
    await startBotHarness({ env: { STORE_URL: redis.url } }),
    await startBotHarness({ env: { STORE_URL: redis.url } }),
  ];
  try {
    const member = memberOf(other, "ivy");
    // The other process has read the member's choice (opted in) just before.
    const before = other.discord.sendMessage({ content: "what a day", author: member });
    await other.outcomes.next("reacted", { messageId: before });
    expect(String((await privacy(one, "opt-out", member)).content)).toContain("you are opted out");
    const after = other.discord.sendMessage({ content: "what a day again", author: member });
    await other.outcomes.next("skipped", { messageId: after, reason: "member opted out" });
  } finally {
    await one.close();
    await other.close();
    await redis.release();
  }
});

describe("deleted means gone from disk", () => {
  const words = () => `quokka${Math.random().toString(36).slice(2, 10)}`;

  it("SQLite: after /privacy delete, no byte of the database or its log holds the member's words or id", async () => {
    const h = await startBotHarness();
    try {
      const member = memberOf(h, "fay");
      const secret = words();
      await mention(h, member, `my secret is ${secret}`);
      await countedMoods(h, member, 1);
      const files = ["bot.sqlite", "bot.sqlite-wal", "bot.sqlite-shm"].map((f) => join(h.dataDir, f));
      const onDisk = async (text: string) => {
        const contents = await Promise.all(files.map((file) => readFile(file).catch(() => Buffer.alloc(0))));
        return contents.some((bytes) => bytes.includes(text));
      };
      expect(await onDisk(secret)).toBe(true);
      expect(await onDisk(member.id)).toBe(true);
      expect(String((await privacy(h, "delete", member)).content)).toContain("gone from the store's files");
      await h.outcomes.next("deleted", { scope: "member", id: member.id });
      expect(await onDisk(secret)).toBe(false);
      expect(await onDisk(member.id)).toBe(false);
      // The tombstones' key is in the store, and never in the log.
      const [key] = (await storeRecords(h.config.storeUrl)).filter((r) =>
        r.key.endsWith(TOMBSTONE_SECRET_KEY),
      );
      expect(key?.text).toMatch(/[0-9a-f]{64}/);
      expect(h.logs.text).not.toContain(/[0-9a-f]{64}/.exec(key?.text ?? "")?.[0]);
    } finally {
      await h.close();
    }
  });

  it("Redis: after /privacy delete, no key or value of any type names the member, and the append-only file is rewritten, at most once an hour", async () => {
    const redis = await RedisServer.start();
    const h = await startBotHarness({ env: { STORE_URL: redis.url } });
    try {
      const aofHolds = async (text: string) => (await redis.appendOnlyBytes()).includes(text);
      const member = memberOf(h, "gus");
      const secret = words();
      await mention(h, member, `my secret is ${secret}`);
      await countedMoods(h, member, 1);
      const holding = await recordsHolding(redis.url, member.id);
      expect(new Set(holding.map((record) => record.type))).toEqual(new Set(["list", "hash", "zset"]));
      expect(await aofHolds(secret)).toBe(true);
      expect(await aofHolds(member.id)).toBe(true);

      expect(String((await privacy(h, "delete", member)).content)).toContain("append-only file");
      await h.outcomes.next("deleted", { scope: "member", id: member.id });
      expect(await recordsHolding(redis.url, member.id)).toEqual([]);
      await waitUntil(async () => !(await aofHolds(secret)) && !(await aofHolds(member.id)), {
        timeoutMs: 20_000,
        failure: () => "the deleted words or id are still in the append-only file",
      });
      const secretKey = (await storeRecords(redis.url)).find((r) => r.key.endsWith(TOMBSTONE_SECRET_KEY));
      expect(secretKey?.text).toMatch(/^[0-9a-f]{64}$/);
      expect(h.logs.text).not.toContain(secretKey?.text);

      // A second deletion within the hour waits for the window: the rewrite is marked as due.
      const other = memberOf(h, "hal");
      await mention(h, other, `another secret ${words()}`);
      await privacy(h, "delete", other);
      expect(await h.store.eraseDue()).toBe("pending");
    } finally {
      await h.close();
      await redis.stop();
    }
  });

  it("Redis down: /privacy delete says nothing is deleted yet, and deleting again once it is back finds everything", async () => {
    const redis = await RedisServer.start();
    const h = await startBotHarness({ env: { STORE_URL: redis.url } });
    try {
      const member = memberOf(h, "ida");
      await mention(h, member, "kept until I can delete it");
      await countedMoods(h, member, 1);
      expect(await storedTexts(h, h.discord.channelId)).toContain("kept until I can delete it");

      await redis.stop();
      expect((await privacy(h, "delete", member)).content).toBe(WORDING.en.privacy.notDeleted);
      expect(h.outcomes.all("deleted", { scope: "member", id: member.id })).toEqual([]);

      await redis.restart();
      await waitUntil(() => h.store.reachable, {
        timeoutMs: 20_000,
        failure: () => "the bot did not reconnect to Redis",
      });
      // Nothing was lost track of: the index still leads to every record, and the records are there.
      expect(await storedTexts(h, h.discord.channelId)).toContain("kept until I can delete it");
      expect(await h.store.index.get(INDEX.memberChannels(member.id))).toEqual([h.discord.channelId]);
      expect(await h.store.index.get(INDEX.memberGuilds(member.id))).toEqual([h.discord.guildId]);

      expect(String((await privacy(h, "delete", member)).content)).toContain("Deleted: 2 turns");
      await h.outcomes.next("deleted", { scope: "member", id: member.id });
      expect(await recordsHolding(redis.url, member.id)).toEqual([]);
    } finally {
      await h.close();
      await redis.stop();
    }
  });

  it("managed Redis without BGREWRITEAOF: the member hears the truth, the refusal is logged once, and nothing retries", async () => {
    const redis = await RedisServer.start({ args: ["--rename-command", "BGREWRITEAOF", ""] });
    const h = await startBotHarness({ env: { STORE_URL: redis.url } });
    const client = createRedisClient(redis.url);
    await client.connect();
    try {
      const errorReplies = async () =>
        Number(/total_error_replies:(\d+)/.exec(await client.info("stats"))?.[1]);
      const refusals = () => h.logs.lines.filter((line) => String(line.msg).includes("BGREWRITEAOF"));
      const member = memberOf(h, "jo");
      await mention(h, member, "on a managed server");
      expect(await storedTexts(h, h.discord.channelId)).toContain("on a managed server");

      const answer = String((await privacy(h, "delete", member)).content);
      expect(answer).toContain("Deleted: 2 turns");
      expect(answer).toContain(
        "copies stay in the store server's own files until the bot's operator rewrites them",
      );
      await h.outcomes.next("deleted", { scope: "member", id: member.id });
      expect(await recordsHolding(redis.url, member.id)).toEqual([]);
      expect(refusals()).toHaveLength(1);
      expect(refusals()[0]).toMatchObject({ level: 40, why: "refused" });

      // Nothing is left due, so maintenance asks no more; a second deletion is told the same without asking.
      const asked = await errorReplies();
      expect(await h.store.eraseDue()).toBeUndefined();
      await h.app.maintenance.runNow();
      await h.app.maintenance.runNow();
      const other = memberOf(h, "kit");
      await mention(h, other, "also on a managed server");
      expect(String((await privacy(h, "delete", other)).content)).toContain(
        "the bot's operator rewrites them",
      );
      await h.outcomes.next("deleted", { scope: "member", id: other.id });
      expect(await errorReplies()).toBe(asked);
      expect(refusals()).toHaveLength(1);
      const zh = String((await privacy(h, "delete", other, "zh-CN")).content);
      expect(zh).toContain("在机器人的运营者重写存储服务器自己的文件之前，副本仍留在这些文件里");
    } finally {
      await client.quit();
      await h.close();
      await redis.stop();
    }
  });
});
