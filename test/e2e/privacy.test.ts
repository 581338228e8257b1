import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MemberExport } from "../../src/store/memberData.js";
import { dayOf } from "../../src/store/moodTally.js";
import { WORDING } from "../../src/wording.js";
import type { FakeUser, RecordedRequest } from "../../testkit/fakeDiscord.js";
import { type BotHarness, startBotHarness } from "../../testkit/harness.js";
import { RedisServer, sharedRedis } from "../../testkit/redis.js";
import { waitUntil } from "../../testkit/waitUntil.js";
import { STORE_BACKENDS } from "../support/storeBackends.js";

const body = (request: RecordedRequest | undefined) => (request?.body ?? {}) as Record<string, unknown>;
const originalOf = (token: string) => new RegExp(`/${token}/messages/@original$`);
const reactionPath = (messageId: string) => new RegExp(`^/channels/\\d+/messages/${messageId}/reactions/`);
const DAY_MS = 86_400_000;

/** Runs /privacy <sub> as a member and returns the private answer (deferred, then edited in). */
async function privacy(h: BotHarness, sub: string, user: FakeUser): Promise<Record<string, unknown>> {
  const { token } = h.discord.sendSlashCommand({ name: "privacy", user, options: [{ name: sub, type: 1 }] });
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

/** A mention from a member, answered; returns the message's id. */
async function mention(h: BotHarness, user: FakeUser, content: string, channelId?: string): Promise<string> {
  const id = h.discord.sendMessage({
    content: `<@${h.discord.botUser.id}> ${content}`,
    author: user,
    mentionBot: true,
    ...(channelId === undefined ? {} : { channelId }),
  });
  await h.waitForOutcome(id, "replied", 60_000);
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

describe.each(STORE_BACKENDS)("privacy on $name", ({ setUp }) => {
  let h: BotHarness;
  let tearDown: () => Promise<void>;
  // Every test has members of its own: on a shared Redis, other suites' data never meets this one's.
  const newMember = (): FakeUser => ({ id: h.discord.snowflake(), username: "dana" });

  beforeAll(async () => {
    const backend = await setUp();
    tearDown = backend.tearDown;
    h = await startBotHarness({ env: { STORE_URL: backend.url }, withTasks: true });
  });
  afterAll(async () => {
    await h?.close();
    await tearDown?.();
  });

  it("/privacy show says what is stored, for how long, and how to opt out", async () => {
    const member = newMember();
    await mention(h, member, "hello there");
    const answer = String((await privacy(h, "show", member)).content);
    expect(answer).toContain("for 30 days");
    expect(answer).toContain("Now: 1 of your messages in 1 channels");
    expect(answer).toContain("/privacy opt-out");
    // Moderation is the server's rule: the member is told it goes on after an opt-out.
    expect(answer).toContain("still checked after you opt out");
    const zh = h.discord.sendSlashCommand({
      name: "privacy",
      user: member,
      locale: "zh-CN",
      options: [{ name: "show", type: 1 }],
    });
    const [edit] = await h.discord.waitForRequests("PATCH", originalOf(zh.token));
    expect(String(body(edit).content)).toContain("保存 30 天");
  });

  it("an opted-out member gets no reaction and no count, is answered with nothing stored, and is left out of /summarize", async () => {
    const member = newMember();
    expect(String((await privacy(h, "opt-out", member)).content)).toContain("you are opted out");

    const plain = h.discord.sendMessage({ content: "what a lovely day", author: member });
    expect(await h.waitForOutcome(plain, "message skipped")).toMatchObject({ reason: "member opted out" });
    const asked = await mention(h, member, "remember that my cat is called Biscuit");
    expect(await storedTexts(h, h.discord.channelId)).not.toContainEqual(expect.stringContaining("Biscuit"));
    expect(h.discord.requestsMatching("PUT", reactionPath(asked))).toEqual([]);

    const bob = newMember();
    h.discord.sendMessage({ content: "opted-out plans", author: member });
    h.discord.sendMessage({ content: "everyone's plans", author: bob });
    const task = h.discord.sendSlashCommand({
      name: "summarize",
      options: [{ name: "count", type: 4, value: 2 }],
    });
    await waitUntil(
      () => h.logs.lines.some((l) => l.interactionId === task.id && l.msg === "channel task input"),
      {
        timeoutMs: 20_000,
        failure: () => "no channel task input logged",
      },
    );
    const input = h.logs.lines.find((l) => l.interactionId === task.id && l.msg === "channel task input");
    expect(input).toMatchObject({ messages: 1, optedOutLeftOut: 1 });

    const stored = await h.app.memberData.export(member.id);
    expect(stored.history).toEqual({});
    expect(stored.moodTallies).toEqual({});
    expect(stored.settings.optedOut).toBe(true);

    expect(String((await privacy(h, "opt-in", member)).content)).toContain("opted in again");
    const after = h.discord.sendMessage({ content: "back again", author: member });
    await h.discord.waitForRequests("PUT", reactionPath(after));
  });

  it("/privacy export sends the member's turns by channel and their mood counts as JSON", async () => {
    const member = newMember();
    const asked = await mention(h, member, "my favourite colour is teal");
    await countedMoods(h, member, 1);
    const data = await exported(h, member);
    expect(data.memberId).toBe(member.id);
    expect(data.history[h.discord.channelId]).toEqual([
      { at: expect.any(String), messageId: asked, text: "my favourite colour is teal" },
    ]);
    const today = new Date(dayOf(Date.now()) * DAY_MS).toISOString().slice(0, 10);
    const counts = data.moodTallies[h.discord.guildId]?.[today];
    expect((counts?.positive ?? 0) + (counts?.negative ?? 0) + (counts?.neutral ?? 0)).toBe(1);
    expect(data.settings).toEqual({ optedOut: false });
  });

  it("/privacy delete removes the member's turns, the replies to them and their counts, in every channel", async () => {
    const member = newMember();
    const bob = newMember();
    await mention(h, member, "first secret", h.discord.channelId);
    await mention(h, member, "second secret", h.discord.secondChannelId);
    await mention(h, bob, "bob stays");
    await countedMoods(h, member, 2);

    const answer = String((await privacy(h, "delete", member)).content);
    expect(answer).toContain("Deleted: 4 turns");
    const first = await storedTexts(h, h.discord.channelId);
    expect(first).not.toContainEqual(expect.stringContaining("secret"));
    expect(first).toContain("bob stays");
    expect(await storedTexts(h, h.discord.secondChannelId)).not.toContainEqual(
      expect.stringContaining("secret"),
    );
    // No reply to the member survives: every remaining turn belongs to someone else's exchange.
    const turns = ((await h.store.turns.read(h.discord.channelId)) ?? []) as Array<{ memberId?: string }>;
    expect(turns.filter((turn) => turn.memberId === member.id)).toEqual([]);

    const [today] = await h.app.memberData.memberMood({ guildId: h.discord.guildId, memberId: member.id }, 1);
    expect(today).toEqual({ positive: 0, negative: 0, neutral: 0 });
    const data = await exported(h, member);
    expect(data.history).toEqual({});
    expect(data.moodTallies).toEqual({});
    expect(String((await privacy(h, "export", member)).content)).toBe(WORDING.en.privacy.exportedNothing);
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
    const asked = await mention(h, member, "what did I say?", channelId);
    const done = h.logs.lines.find((l) => l.messageId === asked && l.msg === "chat turn done");
    expect(done).toMatchObject({ historyTurns: 1 });

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
    await waitUntil(async () => (await turnsOf(first)).length === 0, {
      timeoutMs: 20_000,
      failure: () => "the deleted message's turns are still stored",
    });
    expect(await turnsOf(second)).toHaveLength(2);

    h.discord.bulkDeleteMessages([second, h.discord.snowflake()]);
    await waitUntil(async () => (await turnsOf(second)).length === 0, {
      timeoutMs: 20_000,
      failure: () => "the bulk-deleted message's turns are still stored",
    });
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

  it("/settings purge deletes everything stored for the server, only after an admin confirms", async () => {
    const member = newMember();
    await mention(h, member, "purge candidate");
    await countedMoods(h, member, 1);
    await h.app.settings.set("channel", h.discord.channelId, "language", "zh");
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
    expect(await storedTexts(h, h.discord.channelId)).toContain("purge candidate");

    const confirmed = h.discord.sendButtonClick({ customId: purge });
    const [callback] = await h.discord.waitForRequests("POST", new RegExp(`/${confirmed.token}/callback$`));
    expect(body(callback).type).toBe(6);
    const [done] = await h.discord.waitForRequests("PATCH", originalOf(confirmed.token));
    expect(String(body(done).content)).toContain("已删除");
    expect(body(done).components).toEqual([]);
    expect(await h.store.turns.read(h.discord.channelId)).toBeUndefined();
    expect(await h.app.settings.get("channel", h.discord.channelId)).toEqual({});
    const [today] = await h.app.memberData.memberMood({ guildId: h.discord.guildId, memberId: member.id }, 1);
    expect(today).toEqual({ positive: 0, negative: 0, neutral: 0 });
  });
});

describe.each(STORE_BACKENDS)("removal from a server on $name", ({ setUp }) => {
  it("keeps a server's data through an outage, and purges it when the bot is removed", async () => {
    const backend = await setUp();
    const h = await startBotHarness({ env: { STORE_URL: backend.url } });
    try {
      const member: FakeUser = { id: h.discord.snowflake(), username: "erin" };
      await mention(h, member, "server memories");
      await h.app.settings.set("guild", h.discord.guildId, "reactions", "off");
      await countedMoods(h, member, 1);

      h.discord.removeGuild(h.discord.guildId, { outage: true });
      await h.waitForLog("server unavailable (a Discord outage): its data is kept");
      expect(await storedTexts(h, h.discord.channelId)).toContain("server memories");

      h.discord.removeGuild(h.discord.guildId);
      await h.waitForLog("server data purged");
      expect(await h.store.turns.read(h.discord.channelId)).toBeUndefined();
      expect(await h.app.settings.get("guild", h.discord.guildId)).toEqual({});
      const [today] = await h.app.memberData.memberMood(
        { guildId: h.discord.guildId, memberId: member.id },
        1,
      );
      expect(today).toEqual({ positive: 0, negative: 0, neutral: 0 });
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
    const member: FakeUser = { id: other.discord.snowflake(), username: "ivy" };
    // The other process has read the member's choice (opted in) just before.
    const before = other.discord.sendMessage({ content: "what a day", author: member });
    await other.discord.waitForRequests("PUT", reactionPath(before));
    expect(String((await privacy(one, "opt-out", member)).content)).toContain("you are opted out");
    const after = other.discord.sendMessage({ content: "what a day again", author: member });
    expect(await other.waitForOutcome(after, "message skipped")).toMatchObject({
      reason: "member opted out",
    });
  } finally {
    await one.close();
    await other.close();
    await redis.release();
  }
});

describe("deleted means gone from disk", () => {
  const words = () => `quokka${Math.random().toString(36).slice(2, 10)}`;

  it("SQLite: after /privacy delete, no byte of the database or its log holds the member's words", async () => {
    const h = await startBotHarness();
    try {
      const member: FakeUser = { id: h.discord.snowflake(), username: "fay" };
      const secret = words();
      await mention(h, member, `my secret is ${secret}`);
      const files = ["bot.sqlite", "bot.sqlite-wal", "bot.sqlite-shm"].map((f) => join(h.dataDir, f));
      const onDisk = async () => {
        const contents = await Promise.all(files.map((file) => readFile(file).catch(() => Buffer.alloc(0))));
        return contents.some((bytes) => bytes.includes(secret));
      };
      expect(await onDisk()).toBe(true);
      expect(String((await privacy(h, "delete", member)).content)).toContain("gone from the store's files");
      expect(await onDisk()).toBe(false);
    } finally {
      await h.close();
    }
  });

  it("Redis: a deletion rewrites the append-only file, at most once an hour", async () => {
    const redis = await RedisServer.start();
    const h = await startBotHarness({ env: { STORE_URL: redis.url } });
    try {
      const aofHolds = async (text: string) => {
        const dir = join(redis.dir, "appendonlydir");
        const names = await readdir(dir);
        const contents = await Promise.all(names.map((name) => readFile(join(dir, name))));
        return contents.some((bytes) => bytes.includes(text));
      };
      const member: FakeUser = { id: h.discord.snowflake(), username: "gus" };
      const secret = words();
      await mention(h, member, `my secret is ${secret}`);
      expect(await aofHolds(secret)).toBe(true);
      expect(String((await privacy(h, "delete", member)).content)).toContain("append-only file");
      await waitUntil(async () => !(await aofHolds(secret)), {
        timeoutMs: 20_000,
        failure: () => "the deleted words are still in the append-only file",
      });

      // A second deletion within the hour waits for the window: the rewrite is marked as due.
      const other: FakeUser = { id: h.discord.snowflake(), username: "hal" };
      await mention(h, other, `another secret ${words()}`);
      await privacy(h, "delete", other);
      expect(await h.store.eraseDue()).toBe("pending");
    } finally {
      await h.close();
      await redis.stop();
    }
  });
});
