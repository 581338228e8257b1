import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scrubSecrets, serializeError } from "../../src/logger.js";
import { runEntryPoint } from "../../testkit/botProcess.js";
import type { RecordedRequest } from "../../testkit/fakeDiscord.js";
import { type BotHarness, startBotHarness } from "../../testkit/harness.js";
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
