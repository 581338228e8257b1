import { cp, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, type RunningProcess, runEntryPoint } from "../../testkit/botProcess.js";
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

  /** npm start for these shards, returned once the loopback gateway has sent READY to each of them. */
  const start = async (shardIds: string) => {
    const dataDir = await mkdtemp(join(tmpdir(), "moodbot-shard-"));
    const readies = discord.readies.length;
    const bot = await runEntryPoint("src/index.ts", {
      ...testEnv(discord, modelPath, dataDir),
      STORE_URL: redis.url,
      SHARD_COUNT: "2",
      SHARD_IDS: shardIds,
      CHAT_MAX_TOKENS: "8",
    });
    running.push(bot);
    const shards = shardIds.split(",").length;
    await bot.whileRunning(discord.waitForReadies(readies + shards, 60_000), `READY for shards ${shardIds}`);
    return bot;
  };
  const stop = async (bot: RunningProcess) => {
    bot.child.kill("SIGTERM");
    expect((await bot.exited).code).toBe(0);
  };
  const mention = (guild: FakeGuild, text: string) =>
    discord.sendMessage({
      content: `<@${discord.botUser.id}> ${text}`,
      mentionBot: true,
      guildId: guild.id,
      channelId: guild.channelIds[0] ?? "",
    });
  const answersTo = (messageId: string) =>
    discord
      .finalMessages()
      .filter(
        (posted) => (posted.reference as { message_id?: string } | undefined)?.message_id === messageId,
      );

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
    const reactedA = await zero.whileRunning(
      zero.outcomes.next("reacted", { messageId: inA }),
      "A's reaction",
    );
    const reactedB = await one.whileRunning(one.outcomes.next("reacted", { messageId: inB }), "B's reaction");
    expect([reactedA.shardId, reactedB.shardId]).toEqual([0, 1]);
    expect(discord.acceptedMatching("PUT", reactionOn(inA))).toHaveLength(1);
    expect(discord.acceptedMatching("PUT", reactionOn(inB))).toHaveLength(1);
    // Once both have stopped, everything each process did and logged is in: neither touched the other's guild.
    await stop(zero);
    await stop(one);
    expect(zero.outcomes.about(inB)).toEqual([]);
    expect(one.outcomes.about(inA)).toEqual([]);
    const loggedAbout = (bot: RunningProcess, messageId: string) =>
      bot.logs().filter((line) => line.messageId === messageId);
    expect(loggedAbout(zero, inA).length).toBeGreaterThan(0);
    expect(loggedAbout(zero, inA).every((line) => line.shardId === 0)).toBe(true);
    expect(loggedAbout(one, inB).length).toBeGreaterThan(0);
    expect(loggedAbout(one, inB).every((line) => line.shardId === 1)).toBe(true);
    expect(loggedAbout(zero, inB)).toEqual([]);
    expect(loggedAbout(one, inA)).toEqual([]);
  }, 120_000);

  it("continues a conversation when its guild moves to another process sharing the store", async () => {
    const zero = await start("0");
    const one = await start("1");
    const remember = mention(guildA, "remember the word pineapple");
    const first = await zero.whileRunning(
      zero.outcomes.next("replied", { messageId: remember }),
      "the first reply",
    );
    expect(first.historyTurns).toBe(0);

    // Shard 0 moves: its process stops, and a new process takes over both shards.
    await stop(zero);
    await stop(one);
    const both = await start("0,1");
    const recall = mention(guildA, "what was the word?");
    const second = await both.whileRunning(
      both.outcomes.next("replied", { messageId: recall }),
      "the reply after the move",
    );
    // The new process read the exchange from Redis: the model's prompt held both of its turns.
    expect(second).toMatchObject({ shardId: 0, historyTurns: 2 });
    expect(answersTo(recall).map((posted) => posted.content)).toEqual([second.reply]);
    await stop(both);
  }, 120_000);
});

describe("npm run start:sharded", () => {
  it("runs one child process per shard, each with its own model and metrics port, forwards SIGHUP, and stops them all on SIGTERM", async () => {
    const guilds = [guildOnShard(0, 2, "A"), guildOnShard(1, 2, "B")];
    const discord = await new FakeDiscord({ guilds }).start();
    const redis = await RedisServer.start();
    try {
      const dataDir = await mkdtemp(join(tmpdir(), "moodbot-sharded-"));
      // The prompts as shipped, in a folder of the test's own: a task added there is a change SIGHUP picks up.
      const promptsDir = join(dataDir, "prompts");
      await cp(join(REPO_ROOT, "prompts"), promptsDir, { recursive: true });
      const metricsPort = await freeConsecutivePorts();
      const modelPath = await tinyModel({ favouredToken: "negative" });
      const manager = await runEntryPoint("src/sharded.ts", {
        ...testEnv(discord, modelPath, dataDir),
        STORE_URL: redis.url,
        SHARD_COUNT: "2",
        METRICS_PORT: String(metricsPort),
        PROMPTS_DIR: promptsDir,
        // A reload that changes the commands registers them here: each child's registration is seen on Discord.
        DISCORD_GUILD_ID: guilds[0]?.id ?? "",
      });
      await manager.whileRunning(discord.waitForReadies(2, 120_000), "READY for both shard processes");
      expect(discord.readies.map((ready) => ready.shard).sort()).toEqual([
        [0, 2],
        [1, 2],
      ]);
      // Each guild's message is handled by its own shard's process; the outcome comes up through the manager.
      for (const [shardId, guild] of guilds.entries()) {
        const id = discord.sendMessage({
          content: "hi",
          guildId: guild.id,
          channelId: guild.channelIds[0] ?? "",
        });
        const reacted = await manager.whileRunning(
          manager.outcomes.next("reacted", { messageId: id }, 30_000),
          `the reaction in guild ${guild.name}`,
        );
        expect(reacted).toMatchObject({ shardId, label: "negative" });
        expect(discord.acceptedMatching("PUT", reactionOn(id))).toHaveLength(1);
      }
      // One metrics server per child, METRICS_PORT and METRICS_PORT + 1, each serving its own process: each has
      // loaded the model and reacted once.
      const ports = [metricsPort, metricsPort + 1];
      const scrapes = await Promise.all(ports.map((port) => scrape(`http://127.0.0.1:${port}`)));
      expect(scrapes.map((metrics) => metrics.value("moodbot_messages_reacted_total"))).toEqual([1, 1]);
      for (const metrics of scrapes) {
        expect(metrics.labelsOf("moodbot_model_info")).toEqual([
          expect.objectContaining({ model: basename(modelPath) }),
        ]);
      }

      // SIGHUP reaches both children: each reloads, finds the new task, and registers the changed commands.
      await writeFile(
        join(promptsDir, "tasks", "recap.json"),
        JSON.stringify({
          name: "recap",
          description: "Recap the last messages of this channel",
          output: { kind: "text", maxTokens: 16 },
          input: { kind: "channel", defaultCount: 5, maxCount: 10 },
          system: "You recap a Discord conversation in one sentence.",
          template: "Messages, oldest first:\n{{input}}\n\nRecap:",
        }),
      );
      const guildCommands = /^\/applications\/\d+\/guilds\/\d+\/commands$/;
      manager.child.kill("SIGHUP");
      const registered = await manager.whileRunning(
        discord.waitForRequests("PUT", guildCommands, 2, 60_000),
        "both children registering the reloaded commands",
      );
      for (const put of registered) {
        expect((put.body as Array<{ name: string }>).map((command) => command.name)).toContain("recap");
      }

      manager.child.kill("SIGTERM");
      expect((await manager.exited).code).toBe(0);
      expect(manager.logs().filter((l) => l.msg === "bye").length).toBeGreaterThanOrEqual(3);
      // Every child is gone with the manager: neither metrics port answers.
      for (const port of ports) {
        await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
      }
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

    const replied = (messageId: string) => harness.outcomes.next("replied", { messageId });
    const before = mention("first, before the outage");
    await replied(before);
    await redis.stop();
    const during = [mention("during the outage"), mention("still during the outage")];
    for (const id of during) {
      const reply = await replied(id);
      expect(reply.fromModel).toBe(true);
    }
    expect(harness.outcomes.all("failed", { job: "reply" })).toEqual([]);
    // Logged once for the whole outage, not once per turn.
    expect(
      harness.logs.find(
        "store unreachable: answering from the history this process holds, and buffering new turns",
      ),
    ).toHaveLength(1);
    // The outage costs memory, not context: the last turn's prompt held the three turns before it, from memory.
    const lastPrompt = harness.model.callsOf("chat").at(-1)?.turns ?? [];
    expect(lastPrompt.map((turn) => turn.role)).toEqual([
      "system",
      "user",
      "assistant",
      "user",
      "assistant",
      "user",
    ]);
    expect(lastPrompt[1]?.text).toMatch(/: first, before the outage$/);
    expect(lastPrompt[3]?.text).toMatch(/: during the outage$/);
    expect(lastPrompt[5]?.text).toMatch(/: still during the outage$/);

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
  });
});
