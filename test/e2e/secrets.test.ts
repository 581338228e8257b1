import { cpSync, rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PromptReloader } from "../../src/assembly/reload.js";
import { scrubSecrets, serializeError } from "../../src/platform/logger.js";
import { REPO_ROOT, runEntryPoint } from "../../testkit/botProcess.js";
import type { FakeResponse, RecordedRequest } from "../../testkit/fakeDiscord.js";
import { type BotHarness, setUpDryRunModeration, startBotHarness } from "../../testkit/harness.js";
import { tinyModel } from "../../testkit/models.js";
import { RedisServer } from "../../testkit/redis.js";

/*
 * No secret in any log line, at any level: every kind of Discord request fails once, with the bot logging at
 * trace on a password-protected Redis, and the whole output is searched for the bot token, each interaction
 * token and the Redis password.
 */

const BOT_TOKEN = "test-token.abc.def";
const REDIS_PASSWORD = "s3cret-redis-pass";
const INVALID = { status: 400, body: { message: "Invalid Form Body", code: 50035 } };

let redis: RedisServer;
let h: BotHarness;
beforeAll(async () => {
  redis = await RedisServer.start({ password: REDIS_PASSWORD });
  h = await startBotHarness({
    model: { favouredToken: "negative" },
    env: { STORE_URL: redis.url, CHAT_MAX_TOKENS: "8" },
  });
});
afterAll(async () => {
  await h?.close();
  await redis?.stop();
});

/** Fails every request the predicate picks with a 400, until the returned function is called. */
function failing(picks: (request: RecordedRequest) => boolean): () => void {
  return h.discord.override((request) => (picks(request) ? INVALID : undefined));
}

it("logs four failed requests at trace level without the bot token, an interaction token, the Redis password or a request body", async () => {
  const interactionTokens: string[] = [];
  const sentiment = () => {
    const { token } = h.discord.sendSlashCommand({
      name: "sentiment",
      options: [{ name: "text", type: 3, value: "what a day" }],
    });
    interactionTokens.push(token);
  };

  // The interaction callback.
  let restore = failing((request) => /^\/interactions\/\d+\/[^/]+\/callback$/.test(request.path));
  sentiment();
  await h.waitForLog("command failed", 1);
  restore();
  // The webhook edit of a deferred reply.
  restore = failing((request) => request.method === "PATCH" && request.path.startsWith("/webhooks/"));
  sentiment();
  await h.waitForLog("command failed", 2);
  restore();
  // A message.
  restore = failing((request) => request.method === "POST" && /\/messages$/.test(request.path));
  h.discord.sendMessage({ content: `<@${h.discord.botUser.id}> hi`, mentionBot: true });
  await h.waitForLog("chat reply failed");
  restore();
  // A reaction.
  restore = failing((request) => request.method === "PUT" && request.path.includes("/reactions/"));
  h.discord.sendMessage({ content: "this is awful" });
  await h.waitForLog("mood reaction failed");
  restore();

  const output = h.logs.text;
  // Debug lines are there too: the scrubbing covers every level.
  expect(h.logs.lines.some((line) => line.level === 20)).toBe(true);
  for (const secret of [BOT_TOKEN, REDIS_PASSWORD, ...interactionTokens])
    expect(output).not.toContain(secret);
  expect(output).not.toContain("requestBody");
  // The failures themselves are there, with the routes they failed on.
  for (const failure of [...h.logs.find("command failed"), ...h.logs.find("chat reply failed")]) {
    expect(JSON.stringify(failure)).toContain("Invalid Form Body");
  }
  expect(output).toContain("/interactions/");
  expect(output).toContain("/[redacted]/");
});

describe("a startup failure", () => {
  it("names the store without its password, even in the debug log", async () => {
    const bot = await runEntryPoint("src/index.ts", {
      DISCORD_TOKEN: BOT_TOKEN,
      MODEL_PATH: await tinyModel(),
      STORE_URL: `redis://:${REDIS_PASSWORD}@127.0.0.1:9`,
      LOG_LEVEL: "trace",
      LLM_THREADS: "1",
      LLM_GPU: "off",
    });
    const { code } = await bot.exited;
    const output = bot.stdout() + bot.stderr();
    expect(code).toBe(1);
    expect(output).toContain("redis://[redacted]@127.0.0.1:9");
    expect(output).not.toContain(REDIS_PASSWORD);
    expect(output).not.toContain(BOT_TOKEN);
  });
});

describe("the scrubbing itself", () => {
  it("removes given secrets, raw or JSON-escaped, and token-shaped URL parts", () => {
    const line = JSON.stringify({
      url: "https://discord.com/api/v10/webhooks/123/aW50ZXJhY3Rpb246/messages/@original",
      callback: "/interactions/456/tok.en-1/callback",
      store: 'redis://user:p"w@host:6379',
      message: 'token a"b and p"w',
    });
    const scrubbed = scrubSecrets(line, ['a"b', 'p"w']);
    expect(scrubbed).not.toMatch(/aW50ZXJhY3Rpb246|tok\.en-1|a\\"b|p\\"w|user:/);
    expect(JSON.parse(scrubbed)).toEqual({
      url: "https://discord.com/api/v10/webhooks/123/[redacted]/messages/@original",
      callback: "/interactions/456/[redacted]/callback",
      store: "redis://[redacted]@host:6379",
      message: "token [redacted] and [redacted]",
    });
  });

  it("drops a failed request's body from errors and their causes", () => {
    const request = Object.assign(new Error("Invalid Form Body"), {
      requestBody: { json: { content: "hi" } },
    });
    const serialized = serializeError(new Error("outer", { cause: request })) as Record<string, unknown>;
    expect(JSON.stringify(serialized)).not.toContain("requestBody");
    expect(JSON.stringify(serialized)).toContain("Invalid Form Body");
  });
});

/*
 * Errors are logged as objects, through the logger's serializer: an operator gets each error's type, stack and
 * cause chain, and never the parts of an error that carry what a member wrote (a refused request's body, the
 * response Discord sent about it).
 */
describe("errors in the log", () => {
  let m: BotHarness;
  let promptsDir: string;
  let covered: string;
  let alertChannel: string;
  beforeAll(async () => {
    promptsDir = await mkdtemp(join(tmpdir(), "moodbot-prompts-"));
    cpSync(join(REPO_ROOT, "prompts"), promptsDir, { recursive: true });
    m = await startBotHarness({
      // The toxicity labels as whole tokens, the model favouring "insult": every check asks for an alert.
      model: { favouredToken: "insult", extraWords: ["ok", "insult", "threat", "harassment", "spam"] },
      withTasks: true,
      channels: 3,
      env: { LLM_CONTEXT_SIZE: "4096", PROMPTS_DIR: promptsDir, MODERATION_ALERTS_PER_HOUR: "1000" },
    });
    const [first = "", , third = ""] = m.discord.guilds[0]?.channelIds ?? [];
    [covered, alertChannel] = [first, third];
    await setUpDryRunModeration(m, alertChannel, covered);
  });
  afterAll(async () => {
    await m?.close();
    if (promptsDir) await rm(promptsDir, { recursive: true, force: true });
  });

  it("a refused reload keeps the error's type and stack, and its cause's code and stack", async () => {
    rmSync(join(promptsDir, "chat-system.txt"));
    const reloader = new PromptReloader({ app: m.app, bot: m.bot, logger: m.logger });
    expect(await reloader.reload("SIGHUP")).toBe(false);
    const [line] = m.logs.find("prompt reload refused: still serving the previous prompts");
    const err = line?.err as Record<string, unknown> | undefined;
    expect(err).toMatchObject({ type: "PromptFileError" });
    expect(String(err?.message)).toContain("chat-system.txt cannot be read");
    // The stack names where the error was thrown, not just its message.
    expect(String(err?.stack)).toMatch(/^PromptFileError: .+\n\s+at .+prompts\.ts:\d+/);
    const cause = err?.cause as Record<string, unknown> | undefined;
    expect(cause).toMatchObject({ type: "Error", code: "ENOENT", syscall: "open", errno: -2 });
    expect(String(cause?.stack)).toMatch(/^Error: ENOENT.+\n\s+at /);
  });

  /** A refusal as Discord words it: what was wrong, never the text that was sent. */
  const refusals: Record<string, FakeResponse> = {
    "DiscordAPIError (400)": {
      status: 400,
      body: {
        message: "Invalid Form Body",
        code: 50035,
        errors: {
          embeds: {
            "0": {
              description: {
                _errors: [{ code: "BASE_TYPE_MAX_LENGTH", message: "Must be 4096 or fewer in length." }],
              },
            },
          },
        },
      },
    },
    "HTTPError (503)": { status: 503, body: { message: "upstream connect error" } },
  };

  for (const [kind, refusal] of Object.entries(refusals)) {
    it(`a refused alert is logged as a ${kind} with its stack, and without the member's words`, async () => {
      const words = `quartzmoth${kind.length}wobble you absolute clown`;
      const alerts = new RegExp(`^/channels/${alertChannel}/messages$`);
      const restore = m.discord.override((request) =>
        request.method === "POST" && alerts.test(request.path) ? refusal : undefined,
      );
      const before = m.logs.find("moderation check failed").length;
      try {
        const messageId = m.discord.sendMessage({ content: words, channelId: covered });
        const failed = await m.outcomes.next("failed", { messageId, job: "moderation" }, 60_000);
        expect(failed.error).toBeDefined();
      } finally {
        restore();
      }
      // The refused request carried the member's words, so the error discord.js threw held them.
      const refused = m.discord.requests.filter(
        (request) =>
          request.method === "POST" && alerts.test(request.path) && request.status === refusal.status,
      );
      expect(JSON.stringify(refused.at(-1)?.body)).toContain("quartzmoth");
      const [line] = m.logs.find("moderation check failed").slice(before);
      const err = line?.err as Record<string, unknown> | undefined;
      const type = kind.split(" ")[0];
      expect(err).toMatchObject({ type, status: refusal.status, method: "POST" });
      expect(String(err?.url)).toContain(`/channels/${alertChannel}/messages`);
      expect(String(err?.stack)).toMatch(new RegExp(`^${type}\\b[^]*?\\n\\s+at handleErrors `));
      // Nowhere in the whole output, at any level.
      expect(m.logs.text).not.toContain("quartzmoth");
      expect(Object.keys(err ?? {})).not.toContain("requestBody");
      expect(Object.keys(err ?? {})).not.toContain("rawError");
    });
  }
});
