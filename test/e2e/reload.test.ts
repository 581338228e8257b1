import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { REPO_ROOT, type RunningProcess, runEntryPoint } from "../../testkit/botProcess.js";
import { FakeDiscord } from "../../testkit/fakeDiscord.js";
import { testEnv } from "../../testkit/harness.js";
import { tinyModel } from "../../testkit/models.js";
import { waitUntil } from "../../testkit/waitUntil.js";

/*
 * Reloading prompts without a restart, in the real bot process: edit the files, send SIGHUP, and the next
 * command uses them, over the same gateway connection.
 */

let discord: FakeDiscord;
let bot: RunningProcess;
let promptsDir: string;
const intentFile = () => join(promptsDir, "tasks", "intent.json");
const intent = JSON.parse(readFileSync(join(REPO_ROOT, "prompts", "tasks", "intent.json"), "utf8")) as {
  output: { labels: string[] };
};

beforeAll(async () => {
  discord = await new FakeDiscord().start();
  promptsDir = await mkdtemp(join(tmpdir(), "moodbot-prompts-"));
  cpSync(join(REPO_ROOT, "prompts"), promptsDir, { recursive: true });
  const model = await tinyModel({
    favouredToken: " lorem",
    extraWords: [
      "question",
      "request",
      "complaint",
      "praise",
      "chit",
      "-chat",
      "urgent",
      "later",
      "calm",
      "angry",
    ],
  });
  const dataDir = await mkdtemp(join(tmpdir(), "moodbot-reload-"));
  bot = await runEntryPoint("src/index.ts", {
    ...testEnv(discord, model, dataDir),
    PROMPTS_DIR: promptsDir,
    DISCORD_GUILD_ID: discord.guildId,
    LLM_CONTEXT_SIZE: "4096",
  });
  await bot.waitForLog("connected to Discord");
}, 60_000);

afterAll(async () => {
  if (bot && bot.child.exitCode === null) {
    bot.child.kill("SIGTERM");
    await bot.exited;
  }
  await discord?.stop();
});

/** Runs /intent and returns the bot's answer. */
async function runIntent(text: string): Promise<string> {
  const { token } = discord.sendSlashCommand({
    name: "intent",
    options: [{ name: "text", type: 3, value: text }],
  });
  const [edit] = await discord.waitForRequests(
    "PATCH",
    new RegExp(`^/webhooks/\\d+/${token}/messages/@original$`),
  );
  return String((edit?.body as { content?: unknown } | undefined)?.content);
}

/** Sends SIGHUP and waits for the next log line with this message. */
async function sighup(msg: string): Promise<Record<string, unknown>> {
  const count = bot.logs().filter((line) => line.msg === msg).length + 1;
  bot.child.kill("SIGHUP");
  await waitUntil(() => bot.logs().filter((line) => line.msg === msg).length >= count, {
    timeoutMs: 30_000,
    failure: () => `no ${count}× "${msg}" after SIGHUP; stdout:\n${bot.stdout()}\nstderr:\n${bot.stderr()}`,
  });
  return bot.logs().filter((line) => line.msg === msg)[count - 1] ?? {};
}

const writeIntent = (labels: string[]) =>
  writeFileSync(
    intentFile(),
    JSON.stringify({ ...intent, output: { kind: "labels", labels }, examples: [] }),
  );

it("on SIGHUP, the next /intent uses the task file's new labels, and changed commands are registered", async () => {
  expect(await runIntent("can someone pin the rules?")).toMatch(
    /^\*\*(question|request|complaint|praise|chit-chat)\*\* \(\d+%\)/,
  );
  const putsBefore = discord.requestsMatching("PUT", /^\/applications\/\d+\/guilds\/\d+\/commands$/).length;

  writeIntent(["urgent", "later"]);
  writeFileSync(
    join(promptsDir, "tasks", "recap.json"),
    JSON.stringify({
      name: "recap",
      // A description of its own each time, so the commands always change and are registered again.
      description: `Recap a text in one line (${Date.now()})`,
      output: { kind: "text", maxTokens: 16 },
      input: { kind: "text" },
      system: "Recap the text in one line.",
      template: "{{input}}",
    }),
  );
  const reloaded = await sighup("prompts reloaded");
  expect(reloaded).toMatchObject({ trigger: "SIGHUP", commands: "registered in the guild" });
  expect(reloaded.tasks).toEqual(expect.arrayContaining(["intent", "recap", "summarize"]));

  expect(await runIntent("the server is down, please help")).toMatch(
    /^\*\*(urgent|later)\*\* \(\d+%\)\n-# urgent \d+% · later \d+%$/,
  );
  const puts = discord.requestsMatching("PUT", /^\/applications\/\d+\/guilds\/\d+\/commands$/);
  expect(puts).toHaveLength(putsBefore + 1);
  const names = ((puts.at(-1)?.body ?? []) as Array<{ name: string }>).map((command) => command.name);
  expect(names).toContain("recap");
  // The same gateway session throughout: nothing reconnected.
  expect(discord.identifies).toHaveLength(1);
  expect(bot.logs().filter((line) => line.msg === "connected to Discord")).toHaveLength(1);
});

it("keeps a channel's warm chat sequence across a reload: the next turn evaluates only the new turns", async () => {
  const turnDone = async (text: string) => {
    const id = discord.sendMessage({ content: `<@${discord.botUser.id}> ${text}`, mentionBot: true });
    await waitUntil(() => bot.logs().some((line) => line.messageId === id && line.msg === "chat turn done"), {
      timeoutMs: 30_000,
      failure: () => `no "chat turn done" for ${id}`,
    });
    return bot.logs().find((line) => line.messageId === id && line.msg === "chat turn done") ?? {};
  };
  const first = await turnDone("tell me about the weekend plans");
  writeIntent(["urgent", "later"]);
  await sighup("prompts reloaded");
  const second = await turnDone("and what about sunday?");
  expect(Number(second.historyTurns)).toBeGreaterThan(Number(first.historyTurns));
  // The whole prompt (system, history, message) is longer than the first one; only the new turns were evaluated.
  expect(Number(second.evaluatedPromptTokens)).toBeLessThan(Number(first.evaluatedPromptTokens));
});

it("refuses a broken file with one error naming it, and keeps serving the previous prompts", async () => {
  writeIntent(["urgent", "later"]);
  await sighup("prompts reloaded");
  const errorsBefore = bot.logs().filter((line) => Number(line.level) >= 50).length;

  writeFileSync(intentFile(), '{ "name": "intent", ');
  const refused = await sighup("prompt reload refused: still serving the previous prompts");
  expect(String(refused.file)).toMatch(/intent\.json$/);
  expect(String(refused.err)).toContain("not valid JSON");
  expect(bot.logs().filter((line) => Number(line.level) >= 50)).toHaveLength(errorsBefore + 1);

  expect(await runIntent("is anyone around?")).toMatch(/^\*\*(urgent|later)\*\* \(\d+%\)/);
  expect(bot.child.exitCode).toBeNull();
});

it("says plainly that a new label task needs a restart, and serves everything else", async () => {
  writeIntent(["urgent", "later"]);
  writeFileSync(
    join(promptsDir, "tasks", "tone.json"),
    JSON.stringify({
      name: "tone",
      description: "Classify the tone of a text",
      output: { kind: "labels", labels: ["calm", "angry"] },
      input: { kind: "text" },
      system: "Answer calm or angry.",
      template: "{{input}}",
    }),
  );
  const reloadedAt = bot.logs().length;
  await sighup("prompts reloaded");
  const warning = bot
    .logs()
    .slice(reloadedAt)
    .find((line) => String(line.msg).startsWith("new label tasks need a restart"));
  expect(warning?.tasks).toEqual(["tone"]);
  expect(await runIntent("thanks, that fixed it")).toMatch(/^\*\*(urgent|later)\*\* \(\d+%\)/);
});

it("with PROMPTS_WATCH=true, an edited file reloads the prompts once, after the writes settle", async () => {
  const watchedDir = await mkdtemp(join(tmpdir(), "moodbot-watched-prompts-"));
  cpSync(join(REPO_ROOT, "prompts"), watchedDir, { recursive: true });
  const dataDir = await mkdtemp(join(tmpdir(), "moodbot-reload-"));
  const watching = await runEntryPoint("src/index.ts", {
    ...testEnv(discord, await tinyModel({ favouredToken: " lorem" }), dataDir),
    PROMPTS_DIR: watchedDir,
    PROMPTS_WATCH: "true",
    LLM_CONTEXT_SIZE: "4096",
  });
  try {
    await watching.waitForLog("watching the prompts for changes");
    const loaded = await watching.waitForLog("model loaded");
    await watching.waitForLog("connected to Discord");
    // An editor's save: several writes in a row.
    const system = join(watchedDir, "sentiment-system.txt");
    const text = readFileSync(system, "utf8");
    writeFileSync(system, `${text}\nBe brief.`);
    writeFileSync(system, `${text}\nBe brief. Be exact.`);
    writeFileSync(system, `${text}\nBe brief. Be exact. Reply with one word.`);
    const reloaded = await watching.waitForLog("prompts reloaded");
    expect(reloaded.trigger).toBe("file change");
    // The sentiment prefix was evaluated anew, from the longer instruction.
    expect(Number(reloaded.sentimentPrefixTokens)).toBeGreaterThan(Number(loaded.sentimentPrefixTokens));
    expect(watching.logs().filter((line) => line.msg === "prompts reloaded")).toHaveLength(1);
  } finally {
    watching.child.kill("SIGTERM");
    await watching.exited;
  }
});
