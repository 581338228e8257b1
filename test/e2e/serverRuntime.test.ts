import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WORDING } from "../../src/wording/wording.js";
import type { RecordedRequest } from "../../testkit/fakeDiscord.js";
import { setUpDryRunModeration } from "../../testkit/harness.js";
import type { LlamaServer } from "../../testkit/llamaServer.js";
import { freePort } from "../../testkit/ports.js";
import type { Scrape } from "../../testkit/prometheus.js";
import { type Readyz, type ServerBot, serveTinyModel, startServerBot } from "../../testkit/serverBot.js";
import { waitUntil } from "../../testkit/waitUntil.js";

/*
 * The real bot on the server runtime (LLM_SERVER_URL, no model file), against a real llama-server serving a tiny
 * model: reactions, /sentiment, streamed mentions, the prompt tasks and moderation, and the two ways a server
 * problem shows (a wrong key, nothing listening yet) without stopping the bot.
 */

const KEY = "the-right-key-5f0c1e";
const WRONG_KEY = "a-wrong-key-77d2ab";
const reactionPath = (messageId: string) => new RegExp(`^/channels/\\d+/messages/${messageId}/reactions/`);
const emojiOf = (request: RecordedRequest | undefined) =>
  decodeURIComponent(request?.path.match(/reactions\/([^/]+)\/@me$/)?.[1] ?? "");
const body = (request: RecordedRequest | undefined) => (request?.body ?? {}) as Record<string, unknown>;
const referencedId = (reference: unknown) => (reference as { message_id?: string } | undefined)?.message_id;
const originalOf = (token: string) => new RegExp(`^/webhooks/\\d+/${token}/messages/@original$`);
const mention = (h: ServerBot, text: string) =>
  h.discord.sendMessage({ content: `<@${h.discord.botUser.id}> ${text}`, mentionBot: true });

/** Polls /readyz until `done` holds; the failure names the last answer. */
async function readyzUntil(
  h: ServerBot,
  done: (answer: Readyz) => boolean,
  what: string,
  timeoutMs = 20_000,
) {
  let last: Readyz | undefined;
  await waitUntil(
    async () => {
      last = await h.readyz();
      return done(last);
    },
    { timeoutMs, intervalMs: 100, failure: () => `/readyz never showed ${what}: ${JSON.stringify(last)}` },
  );
  return last as Readyz;
}

describe("on a good llama-server, with its key", () => {
  let server: LlamaServer;
  let h: ServerBot;
  beforeAll(async () => {
    // The model favours "negative" over every other token: every label read says negative, every reply repeats it.
    server = await serveTinyModel({ favouredToken: "negative" }, { apiKey: KEY });
    h = await startServerBot({
      serverUrl: server.url,
      apiKey: KEY,
      env: { CHAT_MAX_TOKENS: "600", CHAT_STREAM_EDIT_MS: "100" },
    });
    await readyzUntil(h, (answer) => answer.status === 200, "ready");
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await server?.stop();
  });

  it("reports itself ready, on llama.cpp, with labels read from logits", async () => {
    expect((await h.readyz()).body).toMatchObject({ ready: true, model: "loaded", gateway: "connected" });
    const metrics = await h.scrape();
    expect(metrics.value("moodbot_model_up")).toBe(1);
    expect(metrics.labelsOf("moodbot_model_info")).toEqual([
      expect.objectContaining({ runtime: "llama.cpp", method: "logits", backend: "server" }),
    ]);
  });

  it("gives a message exactly one reaction, with its label's emoji", async () => {
    const id = h.discord.sendMessage({ content: "this is the worst day ever" });
    expect(await h.outcomes.next("reacted", { messageId: id })).toMatchObject({
      label: "negative",
      emoji: "😢",
    });
    const [put] = await h.discord.waitForRequests("PUT", reactionPath(id));
    expect(emojiOf(put)).toBe("😢");
    // A later message reacted to: everything before it is done, and the first got no second reaction.
    const later = h.discord.sendMessage({ content: "and another thing" });
    await h.outcomes.next("reacted", { messageId: later });
    expect(h.discord.acceptedMatching("PUT", reactionPath(id))).toHaveLength(1);
    expect((await h.scrape()).value("moodbot_messages_reacted_total", { label: "negative" })).toBeGreaterThan(
      0,
    );
  });

  it("answers /sentiment with the label, its emoji and a confidence", async () => {
    const { token } = h.discord.sendSlashCommand({
      name: "sentiment",
      options: [{ name: "text", type: 3, value: "what a day" }],
    });
    const [edit] = await h.discord.waitForRequests("PATCH", originalOf(token));
    expect(body(edit).content).toMatch(
      /^😢 \*\*negative\*\* \(confidence \d+%\)\n-# positive \d+% · negative \d+% · neutral \d+%$/,
    );
    const [call] = h.model.callsOf("sentiment").filter((sentiment) => sentiment.text === "what a day");
    expect(call).toBeDefined();
  });

  it("streams a mention's reply (posted, then edited as it grows) and stores the turn", async () => {
    const since = h.discord.requests.length;
    const id = mention(h, "tell me a long story");
    const replied = await h.outcomes.next("replied", { messageId: id }, 30_000);
    expect(replied.fromModel).toBe(true);
    const sent = (method: string, path: RegExp) =>
      h.discord.requests.slice(since).filter((r) => r.method === method && path.test(r.path));
    const posts = sent("POST", /^\/channels\/\d+\/messages$/);
    const edits = sent("PATCH", /^\/channels\/\d+\/messages\/\d+$/);
    expect(body(posts[0]).message_reference).toMatchObject({ message_id: id });
    // The final edit of each message holds its part of the reply, which is exactly what the history stored.
    const final = h.discord.finalMessages(h.discord.channelId);
    const first = final.findIndex((message) => referencedId(message.reference) === id);
    // Streamed: the first words were posted as they came, then the rest edited in as the server sent it.
    const firstPosted = String(body(posts[0]).content);
    expect(firstPosted.length).toBeLessThan(final[first]?.content.length ?? 0);
    expect(final[first]?.content.startsWith(firstPosted)).toBe(true);
    // How many edits depends on how fast the server writes (2 to 6 seen here), so only "some" is asserted.
    expect(edits.length).toBeGreaterThanOrEqual(1);
    // 600 tokens of "negative" are past 2000 characters: the reply continued in further messages.
    expect(posts.length).toBeGreaterThanOrEqual(2);
    const shown = final
      .slice(first, first + replied.messages)
      .map((message) => message.content)
      .join("");
    expect(shown).toMatch(/negative/);
    const turns = ((await h.store.turns.read(h.discord.channelId)) ?? []) as Array<{
      role: string;
      text: string;
      messageId?: string;
    }>;
    const stored = turns.filter((turn) => turn.messageId === id);
    expect(stored.map((turn) => turn.role)).toEqual(["user", "assistant"]);
    expect(stored[1]?.text.replace(/\s+/g, "")).toBe(shown.replace(/\s+/g, ""));
    expect(await h.outcomes.next("stored", { messageId: id })).toBeDefined();
  });

  it("sends its key and never logs it", async () => {
    // Ready at all means llama-server took the key: it answers /props with 401 without it.
    expect(h.llm.readiness.ready).toBe(true);
    expect(h.logs.text).toContain("model server ready");
    expect(h.logs.text).not.toContain(KEY);
  });
});

describe("the prompt tasks and moderation on llama-server", () => {
  let server: LlamaServer;
  let h: ServerBot;
  let covered: string;
  let alertChannel: string;
  beforeAll(async () => {
    // Every label a whole token, the model favouring "insult": every moderation check says insult.
    const labels = ["ok", "insult", "threat", "harassment", "spam"];
    const intents = ["question", "request", "complaint", "praise", "chit", "-chat"];
    server = await serveTinyModel({ favouredToken: "insult", extraWords: [...labels, ...intents] });
    h = await startServerBot({
      serverUrl: server.url,
      withTasks: true,
      channels: 3,
      env: { CHAT_MAX_TOKENS: "24", MODERATION_ALERTS_PER_HOUR: "1000" },
    });
    [covered = "", , alertChannel = ""] = h.discord.guilds[0]?.channelIds ?? [];
    await readyzUntil(h, (answer) => answer.status === 200, "ready");
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await server?.stop();
  });

  it("/intent answers with the label the server's logits gave", async () => {
    const { token } = h.discord.sendSlashCommand({
      name: "intent",
      options: [{ name: "text", type: 3, value: "can someone pin the rules?" }],
    });
    const [edit] = await h.discord.waitForRequests("PATCH", originalOf(token));
    const [answer] = h.model.taskAnswers.filter((task) => task.task === "intent");
    if (answer?.outcome.kind !== "labels") throw new Error(`intent answered ${JSON.stringify(answer)}`);
    expect(answer.outcome.result.method).toBe("logits");
    expect(String(body(edit).content)).toMatch(
      new RegExp(`^\\*\\*${answer.outcome.result.label}\\*\\* \\(\\d+%\\)\\n-# question \\d+% · request`),
    );
  });

  it("/summarize answers with the text the server generated", async () => {
    for (const text of ["the raid is at 8", "I'll bring snacks", "can we move it to 9?"]) {
      h.discord.sendMessage({ content: text, channelId: h.discord.secondChannelId });
    }
    const { token } = h.discord.sendSlashCommand({
      name: "summarize",
      channelId: h.discord.secondChannelId,
      options: [{ name: "count", type: 4, value: 3 }],
    });
    const [edit] = await h.discord.waitForRequests("PATCH", originalOf(token), 1, 30_000);
    const [answer] = h.model.taskAnswers.filter((task) => task.task === "summarize");
    if (answer?.outcome.kind !== "text") throw new Error(`summarize answered ${JSON.stringify(answer)}`);
    // The model read the channel's messages, and what it wrote is what the member sees.
    expect(answer.input).toContain("can we move it to 9?");
    expect(answer.outcome.text).toMatch(/insult/);
    expect(String(body(edit).content)).toContain(answer.outcome.text.trim());
  });

  it("moderation checks a covered channel's message and alerts the moderators (dry-run)", async () => {
    await setUpDryRunModeration(h, alertChannel, covered);
    const id = h.discord.sendMessage({ content: "you absolute clown", channelId: covered });
    expect(await h.outcomes.next("moderated", { messageId: id }, 30_000)).toMatchObject({
      label: "insult",
      alerted: true,
    });
    const alerts = h.discord.requestsMatching("POST", new RegExp(`^/channels/${alertChannel}/messages$`));
    expect(alerts.some((post) => JSON.stringify(body(post)).includes(`/${id}`))).toBe(true);
  });
});

describe("a wrong key", () => {
  let server: LlamaServer;
  let h: ServerBot;
  beforeAll(async () => {
    server = await serveTinyModel({ favouredToken: "negative" }, { apiKey: KEY });
    h = await startServerBot({ serverUrl: server.url, apiKey: WRONG_KEY });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await server?.stop();
  });

  it("keeps the bot up and not ready, naming the cause; skips reactions and answers mentions with a notice", async () => {
    const answer = await readyzUntil(h, (seen) => seen.body.model === "unavailable", "the model unavailable");
    expect(answer.status).toBe(503);
    expect(answer.body).toMatchObject({ ready: false, gateway: "connected" });
    expect(answer.body.modelCause).toMatch(/unauthorized/);
    expect(answer.body.modelCause).not.toContain(WRONG_KEY);
    expect((await h.scrape()).value("moodbot_model_up")).toBe(0);

    const id = h.discord.sendMessage({ content: "this is the worst day ever" });
    expect(await h.outcomes.next("skipped", { messageId: id })).toMatchObject({
      reason: "model unavailable",
    });
    const asked = mention(h, "are you there?");
    expect(await h.outcomes.next("refused", { messageId: asked })).toMatchObject({
      reason: "model unavailable",
    });
    const replies = h.discord
      .requestsMatching("POST", /^\/channels\/\d+\/messages$/)
      .filter((post) => referencedId(body(post).message_reference) === asked);
    expect(replies.map((post) => body(post).content)).toEqual([WORDING.en.modelUnavailable]);
    const metrics = await h.scrape();
    expect(metrics.value("moodbot_messages_skipped_total", { reason: "model_unavailable" })).toBe(2);
    expect(h.discord.requestsMatching("PUT", /reactions/)).toEqual([]);
    expect(h.model.callsOf("sentiment")).toEqual([]);
  });

  it("logs the cause once and never the key", async () => {
    // Logged in the first contact, which startup waited for; the retries meet the same cause and say nothing.
    const warned = h.logs.lines.filter((line) => line.level === 40 && line.cause === "unauthorized");
    expect(warned).toHaveLength(1);
    expect(h.logs.text).not.toContain(WRONG_KEY);
  });
});

describe("a server that is not up when the bot starts", () => {
  let server: LlamaServer | undefined;
  let h: ServerBot;
  let port: number;
  let startedAt: number;
  beforeAll(async () => {
    port = await freePort();
    startedAt = Date.now();
    h = await startServerBot({ serverUrl: `http://127.0.0.1:${port}` });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await server?.stop();
  });

  it("starts not ready, then becomes ready and reacts once the server is up", async () => {
    const down = await readyzUntil(h, (seen) => seen.body.model === "unavailable", "the model unavailable");
    expect(down.status).toBe(503);
    expect(down.body.modelCause).toMatch(/unreachable/);
    // Retried with backoff, not in a tight loop: the waits double from 0.5 s, so a third try comes 1.5 s on.
    const unreachable = (metrics: Scrape) =>
      metrics.value("moodbot_model_server_errors_total", { cause: "unreachable" });
    let tries = 0;
    const tried = async () => {
      tries = unreachable(await h.scrape());
      return tries >= 3;
    };
    await waitUntil(tried, {
      timeoutMs: 10_000,
      failure: () => `only ${tries} tries to reach the server`,
    });
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(1_400);
    expect(tries).toBeLessThanOrEqual(4);
    server = await serveTinyModel({ favouredToken: "negative" }, { port });
    const up = await readyzUntil(h, (seen) => seen.status === 200, "ready after the server came up", 40_000);
    expect(up.body).toMatchObject({ ready: true, model: "loaded" });
    const id = h.discord.sendMessage({ content: "so glad you are back" });
    expect(await h.outcomes.next("reacted", { messageId: id })).toMatchObject({ label: "negative" });
    expect(h.discord.acceptedMatching("PUT", reactionPath(id))).toHaveLength(1);
    // One paragraph per change of cause: the unreachable one, once, then ready.
    expect(h.logs.lines.filter((line) => line.level === 40 && line.cause === "unreachable")).toHaveLength(1);
    expect(h.logs.find("model server ready")).toHaveLength(1);
  }, 60_000);
});
