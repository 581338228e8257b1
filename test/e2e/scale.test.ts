import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type RunningProcess, runEntryPoint } from "../../testkit/botProcess.js";
import { FakeDiscord, type FakeGuild } from "../../testkit/fakeDiscord.js";
import { type BotHarness, startBotHarness, testEnv } from "../../testkit/harness.js";
import { tinyModel } from "../../testkit/models.js";
import { freeConsecutivePorts } from "../../testkit/ports.js";
import { scrape } from "../../testkit/prometheus.js";
import { RedisServer } from "../../testkit/redis.js";
import { waitUntil } from "../../testkit/waitUntil.js";

/** A guild whose events Discord sends to `shard` of `count`: (guild_id >> 22) % count === shard. */
function guildOnShard(shard: number, count: number, name: string): FakeGuild {
  const base = 100_000_000_000n;
  const id = ((base * BigInt(count) + BigInt(shard)) << 22n) + 7n;
  const channel = (((base + 50n) * BigInt(count) + BigInt(shard)) << 22n) + 9n;
  return { id: id.toString(), name, channelIds: [channel.toString(), (channel + 1n).toString()] };
}

const reactionOn = (messageId: string) => new RegExp(`/messages/${messageId}/reactions/`);

describe("two shard processes sharing Redis", () => {
  const guildA = guildOnShard(0, 2, "Guild A");
  const guildB = guildOnShard(1, 2, "Guild B");
  let discord: FakeDiscord;
  let redis: RedisServer;
  let modelPath: string;
  const running: RunningProcess[] = [];

  beforeAll(async () => {
    discord = await new FakeDiscord({ guilds: [guildA, guildB] }).start();
    redis = await RedisServer.start();
    modelPath = await tinyModel({ favouredToken: " lorem" });
  });
  // Each test starts the processes it needs, and none outlives its test.
  afterEach(async () => {
    for (const bot of running.splice(0)) {
      if (bot.child.exitCode !== null) continue;
      bot.child.kill("SIGKILL");
      await bot.exited;
    }
  });
  afterAll(async () => {
    await discord?.stop();
    await redis?.stop();
  });

  const start = async (shardIds: string) => {
    const dataDir = await mkdtemp(join(tmpdir(), "moodbot-shard-"));
    const bot = await runEntryPoint("src/index.ts", {
      ...testEnv(discord, modelPath, dataDir),
      STORE_URL: redis.url,
      SHARD_COUNT: "2",
      SHARD_IDS: shardIds,
      CHAT_MAX_TOKENS: "8",
    });
    running.push(bot);
    await bot.waitForLog("connected to Discord", 60_000);
    return bot;
  };
  const loggedAbout = (bot: RunningProcess, messageId: string) =>
    bot.logs().filter((l) => l.messageId === messageId);
  const mention = (guild: FakeGuild, text: string) =>
    discord.sendMessage({
      content: `<@${discord.botUser.id}> ${text}`,
      mentionBot: true,
      guildId: guild.id,
      channelId: guild.channelIds[0] ?? "",
    });

  it("each process receives only its own guilds' events, and logs carry the shard id", async () => {
    const zero = await start("0");
    const one = await start("1");
    expect(discord.identifies.map((i) => (i as { shard: number[] }).shard).sort()).toEqual([
      [0, 2],
      [1, 2],
    ]);
    const inA = discord.sendMessage({
      content: "hello A",
      guildId: guildA.id,
      channelId: guildA.channelIds[0] ?? "",
    });
    const inB = discord.sendMessage({
      content: "hello B",
      guildId: guildB.id,
      channelId: guildB.channelIds[0] ?? "",
    });
    await discord.waitForRequests("PUT", reactionOn(inA));
    await discord.waitForRequests("PUT", reactionOn(inB));
    // The reaction is logged just after Discord acknowledges it.
    await waitUntil(() => loggedAbout(zero, inA).some((l) => l.msg === "reacted" && l.shardId === 0), {
      timeoutMs: 10_000,
    });
    await waitUntil(() => loggedAbout(one, inB).some((l) => l.msg === "reacted" && l.shardId === 1), {
      timeoutMs: 10_000,
    });
    expect(loggedAbout(zero, inB)).toEqual([]);
    expect(loggedAbout(one, inA)).toEqual([]);
  });

  it("continues a conversation when its guild moves to another process sharing the store", async () => {
    const zero = await start("0");
    const one = await start("1");
    const before = discord.requestsMatching("POST", /\/messages$/).length;
    mention(guildA, "remember the word pineapple");
    await discord.waitForRequests("POST", /\/messages$/, before + 1);
    await zero.waitForLog("chat turn done");

    // Shard 0 moves: its process stops, and a new process takes over both shards.
    zero.child.kill("SIGTERM");
    expect((await zero.exited).code).toBe(0);
    one.child.kill("SIGTERM");
    expect((await one.exited).code).toBe(0);
    const both = await start("0,1");
    mention(guildA, "what was the word?");
    await discord.waitForRequests("POST", /\/messages$/, before + 2);
    const turn = await both.waitForLog("chat turn done");
    expect(turn.historyTurns).toBe(2);
    expect(turn.shardId).toBe(0);
    both.child.kill("SIGTERM");
    expect((await both.exited).code).toBe(0);
  });
});

describe("npm run start:sharded", () => {
  it("runs one child process per shard, each with its own model and metrics port, forwards SIGHUP, and stops them all on SIGTERM", async () => {
    const guilds = [guildOnShard(0, 2, "A"), guildOnShard(1, 2, "B")];
    const discord = await new FakeDiscord({ guilds }).start();
    const redis = await RedisServer.start();
    try {
      const dataDir = await mkdtemp(join(tmpdir(), "moodbot-sharded-"));
      const metricsPort = await freeConsecutivePorts();
      const manager = await runEntryPoint("src/sharded.ts", {
        ...testEnv(discord, await tinyModel({ favouredToken: "negative" }), dataDir),
        STORE_URL: redis.url,
        SHARD_COUNT: "2",
        METRICS_PORT: String(metricsPort),
      });
      const deadline = Date.now() + 90_000;
      while (
        manager.logs().filter((l) => l.msg === "connected to Discord").length < 2 &&
        Date.now() < deadline
      ) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const pids = new Set(
        manager
          .logs()
          .filter((l) => l.msg === "model loaded")
          .map((l) => l.pid),
      );
      expect(pids.size).toBe(2);
      for (const guild of guilds) {
        const id = discord.sendMessage({
          content: "hi",
          guildId: guild.id,
          channelId: guild.channelIds[0] ?? "",
        });
        await discord.waitForRequests("PUT", reactionOn(id));
      }
      // One metrics server per child: METRICS_PORT and METRICS_PORT + 1, each serving its own process.
      const served = await Promise.all(
        [metricsPort, metricsPort + 1].map(async (port) =>
          (await scrape(`http://127.0.0.1:${port}`)).value("moodbot_messages_reacted_total"),
        ),
      );
      expect(served).toEqual([1, 1]);
      manager.child.kill("SIGHUP");
      await waitUntil(() => manager.logs().filter((l) => l.msg === "prompts reloaded").length === 2, {
        timeoutMs: 30_000,
        failure: () => "SIGHUP did not reload the prompts in both shard processes",
      });
      manager.child.kill("SIGTERM");
      expect((await manager.exited).code).toBe(0);
      expect(manager.logs().filter((l) => l.msg === "bye").length).toBeGreaterThanOrEqual(3);
    } finally {
      await discord.stop();
      await redis.stop();
    }
  }, 180_000);

  it("refuses a SQLite store for several shard processes, with the fix", async () => {
    const run = await runEntryPoint("src/sharded.ts", {
      DISCORD_TOKEN: "x",
      SHARD_COUNT: "2",
      STORE_URL: "sqlite://data/bot.sqlite",
    });
    expect((await run.exited).code).toBe(1);
    expect(run.stderr()).toContain("STORE_URL is a SQLite file");
    expect(run.stderr()).toContain("redis://");
  });
});

describe("a Redis outage during a conversation", () => {
  let redis: RedisServer;
  let h: BotHarness | undefined;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterEach(async () => h?.close());
  afterAll(async () => redis?.stop());

  it("answers from memory while Redis is down, and writes every turn there within 5 s of its return", async () => {
    h = await startBotHarness({
      model: { favouredToken: " lorem" },
      env: { STORE_URL: redis.url, CHAT_MAX_TOKENS: "8" },
    });
    const harness = h;
    const mention = (text: string) =>
      harness.discord.sendMessage({ content: `<@${harness.discord.botUser.id}> ${text}`, mentionBot: true });
    const channelId = harness.discord.channelId;

    const before = mention("first, before the outage");
    await harness.waitForOutcome(before, "replied");
    await redis.stop();
    const during = [mention("during the outage"), mention("still during the outage")];
    for (const id of during) {
      const replied = await harness.waitForOutcome(id, "replied");
      expect(replied.fromModel).toBe(true);
    }
    expect(harness.logs.find("chat reply failed")).toEqual([]);
    expect(
      harness.logs.find(
        "store unreachable: answering from the history this process holds, and buffering new turns",
      ),
    ).toHaveLength(1);
    // The outage costs memory, not context: the last turn saw the three turns before it (from memory).
    const turns = harness.logs.find("chat turn done");
    expect(turns.at(-1)?.historyTurns).toBe(4);

    await redis.restart();
    let stored: string[] = [];
    const readStored = async () => {
      try {
        const turns = (await harness.store.turns.read(channelId)) as Array<{ text: string }> | undefined;
        stored = turns?.map((turn) => turn.text) ?? [];
      } catch {
        // Still reconnecting.
      }
      return stored.length >= 6;
    };
    await waitUntil(readStored, {
      timeoutMs: 5_000,
      intervalMs: 50,
      failure: () => `only ${stored.length} turns in Redis 5 s after its return`,
    });
    const users = stored.filter((_, index) => index % 2 === 0);
    expect(users).toEqual(["first, before the outage", "during the outage", "still during the outage"]);
    expect(harness.logs.find("store reachable again: buffered history written").at(-1)).toMatchObject({
      written: 4,
    });
  });
});
