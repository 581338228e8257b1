import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Bot, createBot } from "../../src/discord/createBot.js";
import { PAUSE_NOTICE_GAP_MS } from "../../src/discord/moderationPause.js";
import {
  type Llm,
  type ModelReadiness,
  NO_CACHE_STATS,
  type SentimentResult,
  type TaskOutcome,
} from "../../src/llm/llm.js";
import { Metrics } from "../../src/observability/metrics.js";
import { Outcomes, portable } from "../../src/outcomes/outcomes.js";
import { Pipeline } from "../../src/pipeline/pipeline.js";
import { loadConfig } from "../../src/platform/config.js";
import { ModelUnavailableError } from "../../src/platform/errors.js";
import { createLogger } from "../../src/platform/logger.js";
import { DAY_MS } from "../../src/platform/time.js";
import { loadPrompts } from "../../src/prompts/prompts.js";
import { HistoryStore } from "../../src/store/history.js";
import { MemberData } from "../../src/store/memberData.js";
import { ModerationStore } from "../../src/store/moderation.js";
import { openStore, type Store } from "../../src/store/openStore.js";
import { PrivacyStore } from "../../src/store/privacy.js";
import { SettingsStore } from "../../src/store/settings.js";
import { BUILT_IN_COMMAND_NAMES } from "../../src/tasks/builtInNames.js";
import { loadTasks } from "../../src/tasks/tasks.js";
import { ON_THIS_MACHINE, WORDING } from "../../src/wording/wording.js";
import { FakeDiscord } from "../../testkit/fakeDiscord.js";
import { OutcomeLog } from "../../testkit/outcomeLog.js";

/*
 * The bot while its model cannot take work, as a model server that is away leaves it: the real Discord layer, the
 * pipeline and a SQLite store against the loopback Discord, over a model that is a plain object. Its readiness is
 * switched by the test; while not ready, every call throws ModelUnavailableError, as the server runtime's do, and is
 * counted, so a test tells what reached the model.
 */

const CAUSE = "the model server at 127.0.0.1:9 is unreachable (connect ECONNREFUSED)";

/** A model whose readiness the test sets; ready, it answers at once (positive, ok, a short reply). */
function switchableModel() {
  const calls: string[] = [];
  let readiness: ModelReadiness = { ready: false, cause: CAUSE };
  /** The server went away after the bot read the readiness: calls fail while it still says ready. */
  let lapsed = false;
  const use = (kind: string) => {
    calls.push(kind);
    if (!readiness.ready) throw new ModelUnavailableError(readiness.cause);
    if (lapsed) throw new ModelUnavailableError(CAUSE);
  };
  const labels = <L extends string>(label: L, all: readonly L[]) => ({
    label,
    confidence: 0.9,
    probabilities: Object.fromEntries(
      all.map((l) => [l, l === label ? 0.9 : 0.1 / (all.length - 1)]),
    ) as Record<L, number>,
    method: "logits" as const,
    evaluatedTokens: 4,
    truncated: false,
  });
  const llm: Llm = {
    modelName: "served-model",
    backend: "server",
    contextSize: 4096,
    runtime: { kind: "llama.cpp", method: "logits", model: "served-model" },
    get readiness() {
      return readiness;
    },
    resultIdentity: ["llama.cpp", "logits", "served-model"],
    schedulerStats: {
      completed: 0,
      failed: 0,
      shedFull: 0,
      shedStale: 0,
      cancelled: 0,
      passes: 0,
      sharedPasses: 0,
    },
    queueDepth: { interactive: 0, background: 0, chat: 0 },
    inFlight: 0,
    cacheStats: NO_CACHE_STATS,
    async classifySentiment(): Promise<SentimentResult> {
      use("sentiment");
      return labels("positive", ["positive", "negative", "neutral"]);
    },
    async generateChat(_turns, options) {
      use("chat");
      options.onText?.("hello there");
      return { text: "hello there", stopReason: "eogToken", generatedTokens: 2, evaluatedPromptTokens: 10 };
    },
    async runTask(task): Promise<TaskOutcome> {
      use(`task:${task.name}`);
      if (task.output.kind !== "labels") return { kind: "text", text: "done", generatedTokens: 1 };
      return { kind: "labels", result: labels("ok", task.output.labels) };
    },
    async reload() {
      return { sentimentPrefixTokens: 0, withoutSequence: [] };
    },
    async countTokens(text) {
      use("tokenize");
      return Math.ceil(text.length / 4);
    },
    async truncateToTokens(text, maxTokens) {
      use("tokenize");
      return text.slice(0, maxTokens * 4);
    },
    interrupt() {},
    async close() {},
  };
  return {
    llm,
    calls,
    setReadiness(next: ModelReadiness) {
      readiness = next;
    },
    setLapsed(next: boolean) {
      lapsed = next;
    },
  };
}

let discord: FakeDiscord;
let store: Store;
let bot: Bot;
let dataDir: string;
let metrics: Metrics;
let moderation: ModerationStore;
const outcomes = new OutcomeLog();
const model = switchableModel();
/** The Discord layer's clock (the alert cap's, the pause notices'), moved by hand. */
let now = Date.now();
let watched = "";
let alerts = "";

beforeAll(async () => {
  discord = await new FakeDiscord({ channels: 3 }).start();
  dataDir = await mkdtemp(join(tmpdir(), "moodbot-unready-"));
  const config = loadConfig({
    DISCORD_TOKEN: "test-token.abc.def",
    DISCORD_CLIENT_ID: discord.applicationId,
    DISCORD_API_URL: discord.apiUrl,
    STORE_URL: `sqlite://${join(dataDir, "bot.sqlite")}`,
    LOG_LEVEL: "debug",
  });
  const logger = createLogger({ level: "silent" });
  store = await openStore(config.storeUrl, logger);
  const history = new HistoryStore(store, { maxTurns: 10, retentionMs: DAY_MS }, logger);
  const settings = new SettingsStore(store.keyv, logger);
  const privacy = new PrivacyStore(store.keyv, logger, { cacheMs: 0 });
  moderation = new ModerationStore(store.keyv, logger);
  const memberData = new MemberData({
    store,
    history,
    privacy,
    settings,
    moderation,
    retentionDays: 1,
    logger,
  });
  const tasks = loadTasks(config.tasksDir, BUILT_IN_COMMAND_NAMES);
  const hook = new Outcomes((error) => {
    throw error;
  });
  hook.subscribe((outcome) => outcomes.record(portable(outcome)));
  const pipeline = new Pipeline({
    llm: model.llm,
    history,
    prompts: loadPrompts(config.promptsDir),
    tasks,
    config,
    logger,
    outcomes: hook,
  });
  metrics = new Metrics({ processMetrics: false });
  const deps = {
    pipeline,
    llm: model.llm,
    settings,
    moods: store.moods,
    privacy,
    memberData,
    moderation,
    tasks,
    metrics,
    outcomes: hook,
    logger,
    config,
    // Where members are told the model reads their messages: the /help and /privacy wording's, not this test's.
    modelLocation: ON_THIS_MACHINE,
    now: () => now,
  };
  bot = createBot(deps);
  await bot.start();
  [watched = "", , alerts = ""] = discord.guilds[0]?.channelIds ?? [];
  await moderation.set(discord.guildId, {
    mode: "dry-run",
    alertChannelId: alerts,
    channelIds: [watched],
    threshold: 0.8,
    bypassRoleIds: [],
  });
});

afterAll(async () => {
  await bot?.stop();
  await store?.close();
  await discord?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** A channel moderation does not cover. */
const unwatched = () => discord.guilds[0]?.channelIds[1] ?? "";
const alertPosts = () => discord.requestsMatching("POST", new RegExp(`^/channels/${alerts}/messages$`));
const contentOf = (request: { body: unknown } | undefined) =>
  String((request?.body as { content?: unknown } | undefined)?.content);

describe("while the model is not ready", () => {
  it("a message's reaction is skipped and counted, with no call to the model and no reaction sent", async () => {
    const id = discord.sendMessage({
      content: "what a lovely day",
      channelId: unwatched(),
    });
    const skipped = await outcomes.next("skipped", { messageId: id, job: "message" });
    expect(skipped).toMatchObject({ job: "message", reason: "model unavailable" });
    expect(model.calls).not.toContain("sentiment");
    expect(discord.requestsMatching("PUT", new RegExp(`/messages/${id}/reactions/`))).toEqual([]);
    expect(await metrics.text()).toContain('moodbot_messages_skipped_total{reason="model_unavailable"} 1');
  });

  it("a mention gets the short notice, with no typing, no model call and nothing stored", async () => {
    const channel = unwatched();
    const before = model.calls.length;
    const id = discord.sendMessage({
      content: `<@${discord.botUser.id}> are you there?`,
      mentionBot: true,
      channelId: channel,
    });
    expect(await outcomes.next("refused", { messageId: id })).toMatchObject({
      reason: "model unavailable",
      notified: true,
    });
    const [notice] = await discord.waitForRequests("POST", new RegExp(`^/channels/${channel}/messages$`));
    expect(contentOf(notice)).toBe(WORDING.en.modelUnavailable);
    // Moderation tells its own (this channel is not covered); the mention's reaction and reply are these.
    const ofTheMessage = outcomes
      .about(id)
      .filter((outcome) => !("job" in outcome && outcome.job === "moderation"));
    expect(ofTheMessage).toMatchObject([
      { kind: "skipped", job: "reaction", reason: "model unavailable" },
      { kind: "refused", reason: "model unavailable" },
    ]);
    expect(discord.requestsMatching("POST", new RegExp(`^/channels/${channel}/typing$`))).toEqual([]);
    expect(model.calls.slice(before)).toEqual([]);
    expect(outcomes.all("stored")).toEqual([]);
  });

  it("moderators are told once that moderation is paused; each check is skipped and counted", async () => {
    const first = discord.sendMessage({ content: "you clown", channelId: watched });
    expect(await outcomes.next("skipped", { messageId: first, job: "moderation" })).toMatchObject({
      reason: "model unavailable",
    });
    const [paused] = await discord.waitForRequests("POST", new RegExp(`^/channels/${alerts}/messages$`));
    expect(contentOf(paused)).toBe(WORDING.en.moderation.paused);
    // The notice names no cause: that is the operator's, and can name their machines.
    expect(contentOf(paused)).not.toContain("127.0.0.1");
    const second = discord.sendMessage({ content: "you clown again", channelId: watched });
    await outcomes.next("skipped", { messageId: second, job: "moderation" });
    expect(alertPosts()).toHaveLength(1);
    expect(model.calls.filter((call) => call === "task:toxicity")).toEqual([]);
    expect(await metrics.text()).toContain(
      'moodbot_moderation_checks_skipped_total{reason="model_unavailable"} 2',
    );
  });
  it("a command that needs the model answers with the same notice, not the generic error", async () => {
    const { token } = discord.sendSlashCommand({
      name: "sentiment",
      options: [{ name: "text", type: 3, value: "how does this sound?" }],
    });
    const [answer] = await discord.waitForRequests("PATCH", new RegExp(`/${token}/messages/@original$`));
    expect(contentOf(answer)).toBe(WORDING.en.modelUnavailable);
  });
});

describe("once the model is ready again", () => {
  it("reactions and replies come back, and the alert channel is told that moderation resumed", async () => {
    model.setReadiness({ ready: true });
    const plain = discord.sendMessage({
      content: "back to normal",
      channelId: unwatched(),
    });
    await outcomes.next("reacted", { messageId: plain });
    const checked = discord.sendMessage({ content: "hello all", channelId: watched });
    expect(await outcomes.next("moderated", { messageId: checked })).toMatchObject({
      label: "ok",
      alerted: false,
    });
    // The pause was told less than the notice gap ago: the resume waits, so nothing new is posted yet.
    expect(alertPosts()).toHaveLength(1);

    now += PAUSE_NOTICE_GAP_MS;
    const later = discord.sendMessage({ content: "still fine", channelId: watched });
    await outcomes.next("moderated", { messageId: later });
    const [, resumed] = await discord.waitForRequests(
      "POST",
      new RegExp(`^/channels/${alerts}/messages$`),
      2,
    );
    expect(contentOf(resumed)).toBe(WORDING.en.moderation.resumed);
    const again = discord.sendMessage({ content: "and again", channelId: watched });
    await outcomes.next("moderated", { messageId: again });
    expect(alertPosts()).toHaveLength(2);
  });

  it("a model that goes away between the decision and the call: the same skip and the same notice", async () => {
    model.setLapsed(true);
    try {
      const channel = unwatched();
      const plain = discord.sendMessage({ content: "quick one", channelId: channel });
      expect(await outcomes.next("skipped", { messageId: plain, job: "reaction" })).toMatchObject({
        reason: "model unavailable",
      });
      const asked = discord.sendMessage({
        content: `<@${discord.botUser.id}> hello?`,
        mentionBot: true,
        channelId: channel,
      });
      expect(await outcomes.next("refused", { messageId: asked })).toMatchObject({
        reason: "model unavailable",
        notified: true,
      });
      const notices = discord
        .requestsMatching("POST", new RegExp(`^/channels/${channel}/messages$`))
        .map((request) => contentOf(request));
      expect(notices.filter((notice) => notice === WORDING.en.modelUnavailable)).toHaveLength(2);
    } finally {
      model.setLapsed(false);
    }
  });
});
