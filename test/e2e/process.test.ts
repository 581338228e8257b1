import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NODE_RUNTIME_FLAGS } from "../../src/entry/runtimeFlags.js";
import { createLogger } from "../../src/platform/logger.js";
import { openStore } from "../../src/store/openStore.js";
import { WORDING } from "../../src/wording/wording.js";
import { REPO_ROOT, type RunningProcess, runEntryPoint } from "../../testkit/botProcess.js";
import { FakeDiscord } from "../../testkit/fakeDiscord.js";
import { testEnv } from "../../testkit/harness.js";
import { tinyModel } from "../../testkit/models.js";
import { waitUntil } from "../../testkit/waitUntil.js";

const noStackTrace = (text: string) => expect(text).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);

describe("startup errors", () => {
  it("without DISCORD_TOKEN: one clear paragraph, exit 1", async () => {
    const bot = await runEntryPoint("src/index.ts", {});
    const { code } = await bot.exited;
    expect(code).toBe(1);
    const text = bot.stderr();
    expect(text).toContain("DISCORD_TOKEN is not set");
    expect(text).toContain(".env.example");
    expect(text).toContain("npm run console");
    noStackTrace(text);
    expect(bot.stdout()).toBe("");
  });

  it("warns when Node.js was started without the flags npm start passes", async () => {
    const env = { DISCORD_TOKEN: "x", MODEL_PATH: join(tmpdir(), "moodbot-no-such-model.gguf") };
    const warning = "Node.js was started without the flags npm start passes";
    const asNpmStart = await runEntryPoint("src/index.ts", env);
    const bare = await runEntryPoint("src/index.ts", env, { withoutNodeFlags: true });
    await Promise.all([asNpmStart.exited, bare.exited]);
    expect(asNpmStart.stdout()).not.toContain(warning);
    const warned = bare.logs().find((line) => String(line.msg).startsWith(warning));
    expect(warned?.missingFlags).toEqual([...NODE_RUNTIME_FLAGS]);
  });

  it("names the variable and the fix for any other config error", async () => {
    const bot = await runEntryPoint("src/index.ts", { DISCORD_TOKEN: "x", LLM_THREADS: "many" });
    expect((await bot.exited).code).toBe(1);
    expect(bot.stderr()).toContain("LLM_THREADS must be a whole number");
    expect(bot.stderr()).toContain("Set it to the number of CPU cores");
    noStackTrace(bot.stderr());
  });

  it("reports a config error before node-llama-cpp or discord.js is loaded, from every entry point", async () => {
    const dir = await mkdtemp(join(tmpdir(), "moodbot-imports-"));
    const preload = pathToFileURL(join(REPO_ROOT, "testkit", "watchImports.mjs")).href;
    const packagesLoaded = async (script: string, env: Record<string, string>) => {
      const log = join(dir, `${script.replace(/\W/g, "-")}-${Object.keys(env).length}.log`);
      const run = await runEntryPoint(script, { ...env, MOODBOT_IMPORT_LOG: log }, { preload });
      const exit = await run.exited;
      return { exit, stderr: run.stderr(), loaded: (await readFile(log, "utf8")).split("\n") };
    };
    for (const script of ["src/index.ts", "src/console.ts", "src/sharded.ts", "deploy-commands.ts"]) {
      const { exit, stderr, loaded } = await packagesLoaded(script, {
        DISCORD_TOKEN: "x",
        LLM_THREADS: "many",
      });
      expect(exit.code, script).toBe(1);
      expect(stderr, script).toContain("LLM_THREADS must be a whole number");
      expect(loaded, script).toContain("zod");
      expect(
        loaded.filter((name) => /node-llama-cpp|discord\.js|@discordjs/.test(name)),
        script,
      ).toEqual([]);
    }
    // The watch sees the heavy modules once the config is good (the model file is then missing).
    const past = await packagesLoaded("src/index.ts", {
      DISCORD_TOKEN: "x",
      MODEL_PATH: join(dir, "no-such-model.gguf"),
    });
    expect(past.exit.code).toBe(1);
    expect(past.loaded).toContain("node-llama-cpp");
  });

  it.each([
    ["a missing model file", async (dir: string) => join(dir, "nope.gguf"), "cannot be read"],
    [
      "a truncated GGUF file",
      async (dir: string) => {
        const whole = await readFile(await tinyModel());
        const path = join(dir, "truncated.gguf");
        await writeFile(path, whole.subarray(0, Math.floor(whole.length / 2)));
        return path;
      },
      "could not be loaded",
    ],
    [
      "a file that is not GGUF",
      async (dir: string) => {
        const path = join(dir, "model.gguf");
        await writeFile(path, "<html>not a model</html>");
        return path;
      },
      "is not a GGUF file",
    ],
  ])("stops on %s with one clear error", async (_name, makePath, message) => {
    const dir = await mkdtemp(join(tmpdir(), "moodbot-model-"));
    const bot = await runEntryPoint("src/index.ts", {
      DISCORD_TOKEN: "x",
      MODEL_PATH: await makePath(dir),
      STORE_URL: `sqlite://${join(dir, "bot.sqlite")}`,
    });
    expect((await bot.exited).code).toBe(1);
    expect(bot.stderr()).toContain(message);
    expect(bot.stderr()).toContain("MODEL_PATH");
    noStackTrace(bot.stderr());
  });
});

describe("task faults at startup", () => {
  it("stops on a bad task file with one clear error naming the file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "moodbot-tasks-"));
    await writeFile(join(dir, "broken.json"), JSON.stringify({ name: "broken", description: "x" }));
    const bot = await runEntryPoint("src/index.ts", {
      DISCORD_TOKEN: "x",
      MODEL_PATH: await tinyModel(),
      LLM_THREADS: "1",
      TASKS_DIR: dir,
      STORE_URL: `sqlite://${join(dir, "bot.sqlite")}`,
    });
    expect((await bot.exited).code).toBe(1);
    expect(bot.stderr()).toContain("broken.json is invalid");
    noStackTrace(bot.stderr());
  });
});

describe("store faults at startup", () => {
  it.each([
    [
      "a store file that is not SQLite",
      async (dir: string) => {
        const path = join(dir, "bot.sqlite");
        await writeFile(
          path,
          "this is not a database, just some text that someone saved here by mistake\n".repeat(50),
        );
        return `sqlite://${path}`;
      },
      "cannot be opened for writing",
    ],
    [
      "a store folder that cannot be created",
      async (dir: string) => {
        const file = join(dir, "a-file");
        await writeFile(file, "x");
        return `sqlite://${join(file, "data", "bot.sqlite")}`;
      },
      "cannot be created",
    ],
    ["an unsupported backend", async () => "mongodb://localhost/moodbot", "does not support"],
  ])("stops on %s with one clear error", async (_name, makeUrl, message) => {
    const dir = await mkdtemp(join(tmpdir(), "moodbot-store-"));
    const bot = await runEntryPoint("src/index.ts", {
      DISCORD_TOKEN: "x",
      MODEL_PATH: await tinyModel(),
      LLM_THREADS: "1",
      STORE_URL: await makeUrl(dir),
    });
    expect((await bot.exited).code).toBe(1);
    expect(bot.stderr()).toContain(message);
    expect(bot.stderr()).toContain("STORE_URL");
    noStackTrace(bot.stderr());
  });
});

describe("the bot process against the loopback Discord", () => {
  // One loopback for the block: each test counts only the requests about its own messages, and keeps its history
  // in a store of its own.
  let discord: FakeDiscord;
  let modelPath: string;

  beforeAll(async () => {
    discord = await new FakeDiscord().start();
    modelPath = await tinyModel({ favouredToken: " lorem" });
  });
  afterAll(async () => discord?.stop());

  const freshStore = () => mkdtemp(join(tmpdir(), "moodbot-restart-"));
  const mention = (text: string) =>
    discord.sendMessage({ content: `<@${discord.botUser.id}> ${text}`, mentionBot: true });
  /** npm start, returned once the loopback gateway has let it in: from its READY on, it receives what is sent. */
  const startBot = async (env: Record<string, string>) => {
    const readies = discord.readies.length;
    const bot = await runEntryPoint("src/index.ts", env);
    await bot.whileRunning(discord.waitForReadies(readies + 1), "the gateway's READY");
    return bot;
  };
  /** What the bot's messages answering `messageId` finally say on Discord, each edit applied. */
  const answersTo = (messageId: string) =>
    discord
      .finalMessages()
      .filter(
        (posted) => (posted.reference as { message_id?: string } | undefined)?.message_id === messageId,
      );
  const replied = (bot: RunningProcess, messageId: string) =>
    bot.whileRunning(bot.outcomes.next("replied", { messageId }, 30_000), `the reply to ${messageId}`);

  it("tells its parent its outcomes over IPC only when started with --forward-outcomes", async () => {
    const env = testEnv(discord, modelPath, await freshStore());
    const readies = discord.readies.length;
    const quiet = await runEntryPoint("src/index.ts", env, { forwardOutcomes: false });
    await quiet.whileRunning(discord.waitForReadies(readies + 1), "the gateway's READY");
    const id = discord.sendMessage({ content: "what a lovely day" });
    const reaction = new RegExp(`^/channels/\\d+/messages/${id}/reactions/`);
    await quiet.whileRunning(discord.waitForRequests("PUT", reaction, 1), "the reaction");
    quiet.child.kill("SIGTERM");
    // Exited means the process's IPC channel has closed too: whatever it sent has been read by now.
    expect((await quiet.exited).code).toBe(0);
    expect(quiet.outcomes.seen).toEqual([]);

    const told = await startBot(testEnv(discord, modelPath, await freshStore()));
    const second = discord.sendMessage({ content: "what a lovely day again" });
    await told.whileRunning(told.outcomes.next("reacted", { messageId: second }), "the reacted outcome");
    told.child.kill("SIGTERM");
    expect((await told.exited).code).toBe(0);
  });

  it("keeps channel history across a restart, and shuts down cleanly on SIGTERM and SIGINT", async () => {
    const env = { ...testEnv(discord, modelPath, await freshStore()), CHAT_MAX_TOKENS: "8" };

    const first = await startBot(env);
    const remember = mention("remember the word pineapple");
    const firstReply = await replied(first, remember);
    expect(firstReply.historyTurns).toBe(0);
    expect(answersTo(remember).map((posted) => posted.content)).toEqual([firstReply.reply]);
    const sentAt = Date.now();
    first.child.kill("SIGTERM");
    const firstExit = await first.exited;
    expect(firstExit.code).toBe(0);
    expect(firstExit.at - sentAt).toBeLessThan(10_000);
    expect(first.logs().map((line) => line.msg)).toContain("bye");

    // A new process reads the exchange back from the file: the model's prompt holds both of its turns.
    const second = await startBot(env);
    const recall = mention("what was the word?");
    const secondReply = await replied(second, recall);
    expect(secondReply.historyTurns).toBe(2);
    expect(answersTo(recall).map((posted) => posted.content)).toEqual([secondReply.reply]);
    second.child.kill("SIGINT");
    expect((await second.exited).code).toBe(0);
  }, 120_000);

  it("aborts a generation in flight and still exits 0 within 10 s", async () => {
    const env = {
      ...testEnv(discord, modelPath, await freshStore()),
      CHAT_MAX_TOKENS: "4000",
      LLM_CONTEXT_SIZE: "8192",
    };
    const bot = await startBot(env);
    const typing = new RegExp(`^/channels/${discord.channelId}/typing$`);
    const typingBefore = discord.requestsMatching("POST", typing).length;
    const asked = mention("write forever");
    await discord.waitForRequests("POST", typing, typingBefore + 1);
    const sentAt = Date.now();
    bot.child.kill("SIGTERM");
    const exit = await bot.exited;
    expect(exit.code).toBe(0);
    expect(exit.at - sentAt).toBeLessThan(10_000);
    // The reply was dropped by the shutdown, and said so before the process was gone.
    expect(bot.outcomes.all("shed", { messageId: asked })).toEqual([
      expect.objectContaining({ job: "reply" }),
    ]);
    expect(bot.outcomes.all("replied", { messageId: asked })).toEqual([]);
  });

  it.each([
    [4004, "DISCORD_TOKEN was rejected by Discord"],
    [4014, "Message Content Intent"],
  ])("exits 1 with one clear paragraph when the gateway closes with %i", async (code, paragraph) => {
    discord.closeOnIdentify = code;
    try {
      const bot = await runEntryPoint("src/index.ts", testEnv(discord, modelPath, await freshStore()));
      const exit = await bot.exited;
      expect(exit.code).toBe(1);
      expect(bot.stderr()).toContain(paragraph);
      noStackTrace(bot.stderr());
    } finally {
      discord.closeOnIdentify = undefined;
    }
  });

  it("on SIGTERM mid-reply, marks the reply cut short, and the next turn after a restart sees both turns", async () => {
    const storeDir = await freshStore();
    const env = {
      ...testEnv(discord, modelPath, storeDir),
      CHAT_MAX_TOKENS: "4000",
      LLM_CONTEXT_SIZE: "8192",
      CHAT_STREAM_EDIT_MS: "200",
    };
    const first = await startBot(env);
    const asked = mention("tell me a very long story");
    // The reply is on Discord and still growing: its first message, then an edit of it.
    await first.whileRunning(
      waitUntil(() => answersTo(asked).length > 0, {
        failure: () => "the reply's first message never reached Discord",
      }),
      "the reply's first message",
    );
    const replyId = answersTo(asked)[0]?.id;
    const editsOfReply = new RegExp(`^/channels/\\d+/messages/${replyId}$`);
    await first.whileRunning(discord.waitForRequests("PATCH", editsOfReply), "an edit of the reply");
    first.child.kill("SIGTERM");
    expect((await first.exited).code).toBe(0);
    const shown = String(
      (discord.requestsMatching("PATCH", editsOfReply).at(-1)?.body as { content?: string } | undefined)
        ?.content,
    );
    expect(shown.endsWith(`\n-# ${WORDING.en.cutShort}`)).toBe(true);
    expect(first.outcomes.all("stored", { messageId: asked })).toEqual([
      expect.objectContaining({ turns: 2, interrupted: true }),
    ]);

    const store = await openStore(
      `sqlite://${join(storeDir, "bot.sqlite")}`,
      createLogger({ level: "silent" }),
    );
    const turns = (await store.turns.read(discord.channelId)) as Array<{ role: string; text: string }>;
    await store.close();
    expect(turns.map((turn) => turn.role)).toEqual(["user", "assistant"]);
    expect(turns[0]?.text).toBe("tell me a very long story");
    expect(turns[1]?.text.length).toBeGreaterThan(0);
    expect(shown.startsWith(turns[1]?.text.slice(0, 40) ?? "?")).toBe(true);

    const second = await startBot({ ...env, CHAT_MAX_TOKENS: "8" });
    const next = mention("and then?");
    expect((await replied(second, next)).historyTurns).toBe(2);
    second.child.kill("SIGINT");
    expect((await second.exited).code).toBe(0);
  }, 120_000);

  it("deploy-commands bulk-overwrites the guild's commands, or the global ones", async () => {
    const env = testEnv(discord, modelPath, await freshStore());
    const guildCommands = /^\/applications\/\d+\/guilds\/\d+\/commands$/;
    const globalCommands = /^\/applications\/\d+\/commands$/;
    const guildPutsBefore = discord.requestsMatching("PUT", guildCommands).length;
    const globalPutsBefore = discord.requestsMatching("PUT", globalCommands).length;
    const toGuild = await runEntryPoint("deploy-commands.ts", { ...env, DISCORD_GUILD_ID: discord.guildId });
    expect((await toGuild.exited).code).toBe(0);
    expect(toGuild.stdout()).toContain(`Registered 11 commands to guild ${discord.guildId}`);
    const guildPuts = discord.requestsMatching("PUT", guildCommands).slice(guildPutsBefore);
    expect(guildPuts).toHaveLength(1);
    const [guildPut] = guildPuts;
    expect(guildPut?.path).toBe(`/applications/${discord.applicationId}/guilds/${discord.guildId}/commands`);
    expect(guildPut?.body).toEqual([
      expect.objectContaining({
        name: "sentiment",
        description_localizations: { "zh-CN": expect.any(String) },
        options: [
          expect.objectContaining({ name: "text", type: 3, required: true, max_length: 4000 }),
          expect.objectContaining({ name: "private", type: 5 }),
        ],
      }),
      expect.objectContaining({ name: "Analyze mood", type: 3, name_localizations: { "zh-CN": "分析情绪" } }),
      expect.objectContaining({ name: "Mood of this member", type: 2, contexts: [0] }),
      expect.objectContaining({ name: "mood" }),
      expect.objectContaining({ name: "forget", default_member_permissions: "8192" }),
      expect.objectContaining({ name: "settings", default_member_permissions: "32" }),
      expect.objectContaining({ name: "privacy" }),
      expect.objectContaining({ name: "help" }),
      expect.objectContaining({ name: "intent", options: [expect.objectContaining({ name: "text" })] }),
      expect.objectContaining({
        name: "keywords",
        options: [expect.objectContaining({ name: "count", type: 4 })],
      }),
      expect.objectContaining({
        name: "summarize",
        options: [expect.objectContaining({ name: "count", type: 4 })],
      }),
    ]);

    const global = await runEntryPoint("deploy-commands.ts", env);
    expect((await global.exited).code).toBe(0);
    expect(discord.requestsMatching("PUT", globalCommands)).toHaveLength(globalPutsBefore + 1);
  });
});

describe("npm run console", () => {
  it("applies a settings file: emojis and language", async () => {
    const dir = await mkdtemp(join(tmpdir(), "moodbot-console-"));
    const file = join(dir, "console-settings.json");
    await writeFile(
      file,
      JSON.stringify({ "emoji-negative": "💢", language: "zh", persona: "You are terse." }),
    );
    const run = await runEntryPoint(
      "src/console.ts",
      {
        MODEL_PATH: await tinyModel({ favouredToken: "negative" }),
        STORE_URL: `sqlite://${join(dir, "bot.sqlite")}`,
        LLM_THREADS: "1",
        CHAT_MAX_TOKENS: "4",
        CONSOLE_SETTINGS: file,
      },
      { stdin: "太糟糕了\n" },
    );
    expect((await run.exited).code).toBe(0);
    expect(run.stdout()).toMatch(/^💢 负面 \(\d+%\)$/m);
  });

  it("stops with a clear error on a bad settings file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "moodbot-console-"));
    const file = join(dir, "console-settings.json");
    await writeFile(file, JSON.stringify({ colour: "blue" }));
    const run = await runEntryPoint("src/console.ts", {
      MODEL_PATH: await tinyModel(),
      STORE_URL: `sqlite://${join(dir, "bot.sqlite")}`,
      CONSOLE_SETTINGS: file,
    });
    expect((await run.exited).code).toBe(1);
    expect(run.stderr()).toContain('"colour" is not a setting');
  });

  it("prints each line's mood and a reply, using the same store", async () => {
    const modelPath = await tinyModel({ favouredToken: "negative" });
    const dir = await mkdtemp(join(tmpdir(), "moodbot-console-"));
    const run = await runEntryPoint(
      "src/console.ts",
      {
        MODEL_PATH: modelPath,
        STORE_URL: `sqlite://${join(dir, "bot.sqlite")}`,
        LLM_THREADS: "1",
        CHAT_MAX_TOKENS: "6",
      },
      { stdin: "I hate waiting\n\nsecond line\n/intent can you help me?\n/summarize 2\n/nope x\n" },
    );
    expect((await run.exited).code).toBe(0);
    const lines = run.stdout().split("\n");
    const moods = lines.filter((line) => line.includes("😢 negative ("));
    expect(moods).toHaveLength(2);
    // Two replies, then /summarize's answer.
    expect(lines.filter((line) => line.startsWith("moodbot: "))).toHaveLength(3);
    expect(lines.some((line) => /^(question|request|complaint|praise|chit-chat) \(\d+%\)$/.test(line))).toBe(
      true,
    );
    expect(lines).toContain("No task /nope. Tasks: /intent, /keywords, /summarize.");
  });
});
