import { cpSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PromptReloader } from "../../src/assembly/reload.js";
import { REPO_ROOT, type RunningProcess, runEntryPoint } from "../../testkit/botProcess.js";
import { FakeDiscord } from "../../testkit/fakeDiscord.js";
import { startBotHarness, testEnv } from "../../testkit/harness.js";
import { tinyModel } from "../../testkit/models.js";
import type { OutcomeMatch, SeenOutcomeOf } from "../../testkit/outcomeLog.js";
import { waitUntil } from "../../testkit/waitUntil.js";

/*
 * Reloading prompts without a restart, in the real bot process: edit the files, send SIGHUP, and the next
 * command uses them, over the same gateway connection. Each reload's outcome (reloaded, or reloadRefused) comes
 * over IPC; the log is read only where what the operator reads is the subject.
 */

let discord: FakeDiscord;
let bot: RunningProcess;
let promptsDir: string;
const intentFile = () => join(promptsDir, "tasks", "intent.json");
const intent = JSON.parse(readFileSync(join(REPO_ROOT, "prompts", "tasks", "intent.json"), "utf8")) as {
  output: { labels: string[] };
};
/** Words the tiny model knows: the shipped intent labels and the ones these tests switch to. */
const LABEL_WORDS = [
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
];

beforeAll(async () => {
  discord = await new FakeDiscord().start();
  promptsDir = await mkdtemp(join(tmpdir(), "moodbot-prompts-"));
  cpSync(join(REPO_ROOT, "prompts"), promptsDir, { recursive: true });
  const model = await tinyModel({ favouredToken: " lorem", extraWords: LABEL_WORDS });
  const dataDir = await mkdtemp(join(tmpdir(), "moodbot-reload-"));
  bot = await runEntryPoint("src/index.ts", {
    ...testEnv(discord, model, dataDir),
    PROMPTS_DIR: promptsDir,
    DISCORD_GUILD_ID: discord.guildId,
    LLM_CONTEXT_SIZE: "4096",
  });
  await bot.whileRunning(discord.waitForReadies(1), "the gateway session started");
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

/** Sends SIGHUP to a bot process and waits for the reload's own outcome: in force, or refused. */
async function sighup<K extends "reloaded" | "reloadRefused">(
  kind: K,
  proc: RunningProcess = bot,
): Promise<SeenOutcomeOf<K>> {
  // Both kinds carry the trigger; the type checker cannot see that through K.
  const bySighup = { trigger: "SIGHUP" } as OutcomeMatch<K>;
  const count = proc.outcomes.all(kind, bySighup).length + 1;
  proc.child.kill("SIGHUP");
  const seen = await proc.whileRunning(
    proc.outcomes.waitFor(kind, bySighup, { count, timeoutMs: 30_000 }),
    `a ${kind} outcome after SIGHUP`,
  );
  const outcome = seen[count - 1];
  if (!outcome) throw new Error(`no ${kind} outcome after SIGHUP`);
  return outcome;
}

/**
 * A log line of the bot process that matches, once written: for tests whose subject is what the operator reads.
 * The log comes on stdout and outcomes over IPC, so a line can arrive after the outcome it goes with.
 */
async function logLine(
  match: (line: Record<string, unknown>) => boolean,
  from = 0,
): Promise<Record<string, unknown>> {
  const find = () => bot.logs().slice(from).find(match);
  await waitUntil(() => find() !== undefined, {
    failure: () => `no such log line; stdout:\n${bot.stdout()}`,
  });
  return find() ?? {};
}

const writeIntent = (labels: string[], dir = promptsDir) =>
  writeFileSync(
    join(dir, "tasks", "intent.json"),
    JSON.stringify({ ...intent, output: { kind: "labels", labels }, examples: [] }),
  );

it("on SIGHUP, the next /intent uses the task file's new labels, and changed commands are registered", async () => {
  const [identifiesBefore, resumesBefore] = [discord.identifies.length, discord.resumes.length];
  // The shipped labels first, whatever another test left in the file.
  cpSync(join(REPO_ROOT, "prompts", "tasks", "intent.json"), intentFile());
  await sighup("reloaded");
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
  const reloaded = await sighup("reloaded");
  expect(reloaded.commands).toBe("registered in the guild");
  expect(reloaded.tasks).toEqual(expect.arrayContaining(["intent", "recap", "summarize"]));

  expect(await runIntent("the server is down, please help")).toMatch(
    /^\*\*(urgent|later)\*\* \(\d+%\)\n-# urgent \d+% · later \d+%$/,
  );
  const puts = discord.requestsMatching("PUT", /^\/applications\/\d+\/guilds\/\d+\/commands$/);
  expect(puts).toHaveLength(putsBefore + 1);
  const names = ((puts.at(-1)?.body ?? []) as Array<{ name: string }>).map((command) => command.name);
  expect(names).toContain("recap");
  // The same gateway session throughout: nothing reconnected.
  expect(discord.identifies).toHaveLength(identifiesBefore);
  expect(discord.resumes).toHaveLength(resumesBefore);
});

it("refuses a broken file with one error naming it, and keeps serving the previous prompts", async () => {
  writeIntent(["urgent", "later"]);
  await sighup("reloaded");
  const linesBefore = bot.logs().length;

  writeFileSync(intentFile(), '{ "name": "intent", ');
  const refused = await sighup("reloadRefused");
  expect(refused.file).toMatch(/intent\.json$/);
  // The log's subject: one error, naming the file and what is wrong with it.
  const error = await logLine((line) => Number(line.level) >= 50, linesBefore);
  expect(String(error.file)).toMatch(/intent\.json$/);
  expect(JSON.stringify(error.err)).toContain("not valid JSON");
  expect(
    bot
      .logs()
      .slice(linesBefore)
      .filter((line) => Number(line.level) >= 50),
  ).toHaveLength(1);

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
  try {
    const linesBefore = bot.logs().length;
    const reloaded = await sighup("reloaded");
    expect(reloaded.needRestart).toEqual(["tone"]);
    expect(reloaded.tasks).not.toContain("tone");
    // The log's subject: the operator is told plainly what to do.
    const warning = await logLine(
      (line) => String(line.msg).startsWith("new label tasks need a restart"),
      linesBefore,
    );
    expect(warning.tasks).toEqual(["tone"]);
    expect(String(warning.msg)).toContain("restart the bot to serve them");
    expect(await runIntent("thanks, that fixed it")).toMatch(/^\*\*(urgent|later)\*\* \(\d+%\)/);
  } finally {
    // The other tests' reloads go on without it.
    rmSync(join(promptsDir, "tasks", "tone.json"), { force: true });
  }
});

it("with PROMPTS_WATCH=true, an edited file reloads the prompts once, after the writes settle", async () => {
  const watchedDir = await mkdtemp(join(tmpdir(), "moodbot-watched-prompts-"));
  cpSync(join(REPO_ROOT, "prompts"), watchedDir, { recursive: true });
  const dataDir = await mkdtemp(join(tmpdir(), "moodbot-reload-"));
  const sessions = discord.readies.length;
  const watching = await runEntryPoint("src/index.ts", {
    ...testEnv(discord, await tinyModel({ favouredToken: " lorem" }), dataDir),
    PROMPTS_DIR: watchedDir,
    PROMPTS_WATCH: "true",
    LLM_CONTEXT_SIZE: "4096",
  });
  try {
    await watching.whileRunning(discord.waitForReadies(sessions + 1), "the gateway session started");
    // A reload of the files as they are: the prefix they make.
    const before = await sighup("reloaded", watching);
    // An editor's save: several writes in a row.
    const system = join(watchedDir, "sentiment-system.txt");
    const text = readFileSync(system, "utf8");
    writeFileSync(system, `${text}\nBe brief.`);
    writeFileSync(system, `${text}\nBe brief. Be exact.`);
    writeFileSync(system, `${text}\nBe brief. Be exact. Reply with one word.`);
    const changed = await watching.whileRunning(
      watching.outcomes.next("reloaded", { trigger: "file change" }, 30_000),
      "a reload after the file changed",
    );
    // The sentiment prefix was evaluated anew, from the longer instruction.
    expect(changed.sentimentPrefixTokens).toBeGreaterThan(before.sentimentPrefixTokens);
    // Reloads never overlap, and one asked for while another runs waits for it. A second file-change reload, had
    // the debounce let one through, would be running or queued by now, so it would come before this SIGHUP's.
    await sighup("reloaded", watching);
    const triggers = watching.outcomes.all("reloaded").map((reload) => reload.trigger);
    expect(triggers).toEqual(["SIGHUP", "file change", "SIGHUP"]);
  } finally {
    watching.child.kill("SIGTERM");
    await watching.exited;
  }
});

describe("in a running bot", () => {
  it("keeps a channel's warm chat sequence across a reload: the next turn evaluates only the new turns", async () => {
    const dir = await mkdtemp(join(tmpdir(), "moodbot-prompts-"));
    cpSync(join(REPO_ROOT, "prompts"), dir, { recursive: true });
    const h = await startBotHarness({
      model: { favouredToken: " lorem", extraWords: LABEL_WORDS },
      withTasks: true,
      env: { PROMPTS_DIR: dir, LLM_CONTEXT_SIZE: "4096" },
    });
    try {
      // What SIGHUP and the file watcher call in the bot process.
      const reloader = new PromptReloader({ app: h.app, bot: h.bot, logger: h.logger });
      const turn = async (text: string) => {
        const id = h.discord.sendMessage({ content: `<@${h.discord.botUser.id}> ${text}`, mentionBot: true });
        await h.outcomes.next("replied", { messageId: id }, 30_000);
        const answer = h.model.chatAnswers.find((chat) => chat.turns.at(-1)?.text.includes(text));
        if (!answer) throw new Error(`the model answered no prompt ending in "${text}"`);
        return answer;
      };
      const first = await turn("tell me about the weekend plans");
      writeIntent(["urgent", "later"], dir);
      expect(await reloader.reload("SIGHUP")).toBe(true);
      expect(await h.outcomes.next("reloaded")).toMatchObject({ trigger: "SIGHUP" });
      const second = await turn("and what about sunday?");
      // The second prompt holds the first exchange, so it is longer; only its new turns were evaluated.
      expect(second.turns.slice(0, first.turns.length - 1)).toEqual(first.turns.slice(0, -1));
      expect(second.turns.length).toBe(first.turns.length + 2);
      expect(second.completion.evaluatedPromptTokens).toBeLessThan(first.completion.evaluatedPromptTokens);
    } finally {
      await h.close();
    }
  });
});
