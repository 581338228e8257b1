import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MODEL_UNAVAILABLE } from "../../src/discord/reply.js";
import { WORDING } from "../../src/wording/wording.js";
import { type RunningProcess, runEntryPoint } from "../../testkit/botProcess.js";
import { FakeDiscord } from "../../testkit/fakeDiscord.js";
import { testEnv } from "../../testkit/harness.js";
import { type LlamaServer, startLlamaServer } from "../../testkit/llamaServer.js";
import { type LongReplyModel, longReplyModel } from "../../testkit/longReplyModel.js";
import type { OutcomeLog, SeenOutcome } from "../../testkit/outcomeLog.js";
import type { Scrape } from "../../testkit/prometheus.js";
import { type Readyz, type ServerBot, startServerBot } from "../../testkit/serverBot.js";
import { noSlotProcessing, slotsUntil, someSlotDecoding } from "../../testkit/slots.js";
import { waitUntil } from "../../testkit/waitUntil.js";

/*
 * llama-server failing under the bot: killed mid-reply and mid-burst, then restarted on the same port; and the bot
 * leaving a reply mid-stream (the abort alone, then a real process's SIGTERM), which must free the server's slot.
 * The replies stream from a deep test model (testkit/longReplyModel.ts) that writes ~100
 * tokens a second on one thread, so a reply of REPLY_TOKENS lasts many seconds: the stream is provably still open
 * when the fault strikes (an edit accepted by Discord, and /slots still decoding).
 */

/** Seconds of generation on one thread: far longer than any step of these tests takes. */
const REPLY_TOKENS = 1200;
/**
 * The bot never sends ignore_eos (a reply ends where the model ends it); the server is told to ignore the end of
 * the text instead, so that no reply can end early by chance.
 */
const SERVER_ARGS = ["--ignore-eos"];
const NO_MODEL_FILE = join(tmpdir(), "moodbot-server-faults-no-such-model.gguf");
const BOT_ENV = { CHAT_MAX_TOKENS: String(REPLY_TOKENS), CHAT_STREAM_EDIT_MS: "100" };
const MARKER = `\n-# ${WORDING.en.cutShort}`;
const REPLY_ENDS = ["replied", "failed", "refused", "shed"];

const referencedId = (reference: unknown) => (reference as { message_id?: string } | undefined)?.message_id;
const squeeze = (text: string) => text.replace(/\s+/g, "");

let model: LongReplyModel;
beforeAll(async () => {
  model = await longReplyModel();
});
afterAll(async () => model?.remove());

const serve = () =>
  startLlamaServer({ modelPath: model.path, contextSize: 8192, threads: 1, extraArgs: SERVER_ARGS });

/** The Discord message ids of the bot's reply to `messageId`, in order, once Discord gave them. */
function replyMessageIds(discord: FakeDiscord, messageId: string): string[] {
  return discord
    .acceptedMatching("POST", /^\/channels\/\d+\/messages$/)
    .filter(
      (post) => referencedId((post.body as { message_reference?: unknown }).message_reference) === messageId,
    )
    .map((post) => discord.postedMessageId(post) ?? "");
}

/** The streamed edits of the reply to `messageId` that Discord accepted: each is the reply so far. */
function acceptedEdits(discord: FakeDiscord, messageId: string) {
  return replyMessageIds(discord, messageId).flatMap((id) =>
    discord.acceptedMatching("PATCH", new RegExp(`^/channels/\\d+/messages/${id}$`)),
  );
}

/**
 * Waits until the reply to `messageId` is streaming: an edit accepted by Discord, and a slot of the server still
 * decoding. Returns what the last accepted edit showed, and the tokens the slot had yet to write.
 */
async function untilStreaming(
  discord: FakeDiscord,
  server: LlamaServer,
  messageId: string,
): Promise<{ soFar: string; remaining: number }> {
  await waitUntil(() => acceptedEdits(discord, messageId).length > 0, {
    timeoutMs: 30_000,
    failure: () => `the reply to ${messageId} was never edited: ${JSON.stringify(discord.finalMessages())}`,
  });
  const { slots } = await slotsUntil(server.url, someSlotDecoding, "a slot decoding the reply", 5_000);
  const edits = acceptedEdits(discord, messageId);
  return {
    soFar: String((edits.at(-1)?.body as { content?: unknown } | undefined)?.content ?? ""),
    remaining: Math.max(...slots.map((slot) => slot.remaining)),
  };
}

/** What the reply to `messageId` finally shows, its messages joined. */
function shownReply(discord: FakeDiscord, messageId: string): string {
  return discord
    .finalMessages()
    .filter((message) => referencedId(message.reference) === messageId)
    .map((message) => message.content)
    .join("");
}

/** What became of the reply to `messageId`, once something did: replied, failed, refused or shed. */
async function replyOutcome(outcomes: OutcomeLog, messageId: string): Promise<SeenOutcome | undefined> {
  const ended = () => outcomes.about(messageId).find((seen) => REPLY_ENDS.includes(seen.kind));
  await waitUntil(() => ended() !== undefined, {
    failure: () => `the reply to ${messageId} never ended: ${JSON.stringify(outcomes.about(messageId))}`,
  });
  return ended();
}

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

const failedProbes = (metrics: Scrape) =>
  metrics.value("moodbot_model_server_errors_total", { cause: "unreachable", kind: "probe" });

/** A llama-server on the deep model and the real bot on it (in-process), ready. */
async function serverAndBot(): Promise<{ server: LlamaServer; h: ServerBot }> {
  const server = await serve();
  const h = await startServerBot({ serverUrl: server.url, env: BOT_ENV });
  await readyzUntil(h, (answer) => answer.status === 200, "ready");
  return { server, h };
}

describe("llama-server killed mid-reply", () => {
  let server: LlamaServer;
  let h: ServerBot;
  beforeAll(async () => {
    ({ server, h } = await serverAndBot());
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await server?.stop();
  });

  it("keeps the reply so far, marked cut short, stores the turn, and recovers on its own", async () => {
    const id = h.discord.sendMessage({
      content: `<@${h.discord.botUser.id}> tell me a very long story`,
      mentionBot: true,
    });
    const { soFar } = await untilStreaming(h.discord, server, id);
    const probesBefore = failedProbes(await h.scrape());
    const killedAt = Date.now();
    server.kill("SIGKILL");

    expect(await replyOutcome(h.outcomes, id)).toMatchObject({
      kind: "failed",
      job: "reply",
      cutShort: true,
    });
    // What streamed before the kill stays, and the marker says the reply stopped there.
    const shown = shownReply(h.discord, id);
    expect(shown.endsWith(MARKER)).toBe(true);
    expect(shown.startsWith(soFar)).toBe(true);
    expect(shown).toMatch(/lorem/);
    // The exchange is in the history, the reply as far as it came (stored before the reply's outcome is told).
    expect(h.outcomes.all("stored", { messageId: id })).toMatchObject([{ interrupted: true, turns: 2 }]);
    const turns = ((await h.store.turns.read(h.discord.channelId)) ?? []) as Array<{
      role: string;
      text: string;
      messageId?: string;
    }>;
    const stored = turns.filter((turn) => turn.messageId === id);
    expect(stored.map((turn) => turn.role)).toEqual(["user", "assistant"]);
    expect(squeeze(stored[1]?.text ?? "")).toBe(squeeze(shown.slice(0, -MARKER.length)));

    const down = await readyzUntil(
      h,
      (answer) => answer.body.model === "unavailable",
      "the model unavailable",
    );
    expect(down.status).toBe(503);
    expect(down.body.modelCause).toMatch(/unreachable/);
    // Retried on its own, with backoff: the waits double from 0.5 s, so the third failed try comes 1.5 s on.
    let probes = 0;
    await waitUntil(
      async () => {
        probes = failedProbes(await h.scrape()) - probesBefore;
        return probes >= 3;
      },
      { timeoutMs: 10_000, failure: () => `only ${probes} tries to reach the server again` },
    );
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(1_400);

    await server.restart();
    await readyzUntil(h, (answer) => answer.status === 200, "ready after the restart", 30_000);
    // A tight loop would have tried hundreds of times over the outage; backoff tries a handful.
    const outageS = (Date.now() - killedAt) / 1000;
    expect(failedProbes(await h.scrape()) - probesBefore).toBeLessThanOrEqual(
      2 + Math.ceil(Math.log2(outageS * 2)),
    );
    const next = h.discord.sendMessage({ content: "so glad the model is back" });
    expect(await h.outcomes.next("reacted", { messageId: next }, 30_000)).toBeDefined();
  }, 90_000);
});

describe("llama-server killed mid-burst", () => {
  let server: LlamaServer;
  let h: ServerBot;
  beforeAll(async () => {
    ({ server, h } = await serverAndBot());
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await server?.stop();
  });

  const BURST = 20;
  /** Every outcome a message's reaction can end in: waited for on each message, so that none can hang. */
  const FINAL_KINDS = ["reacted", "skipped", "shed", "failed"];
  const finalOutcomes = (id: string) =>
    h.outcomes.about(id).filter((seen) => FINAL_KINDS.includes(seen.kind));

  it("gives every message a definite outcome, and reacts again once the server is back", async () => {
    // Distinct texts: none may be answered from the result cache.
    const ids = Array.from({ length: BURST }, (_, i) =>
      h.discord.sendMessage({ content: `burst message number ${i}, about day ${i * 7 + 3}` }),
    );
    const reacted = () => ids.filter((id) => h.outcomes.about(id).some((seen) => seen.kind === "reacted"));
    await waitUntil(() => reacted().length > 0, {
      timeoutMs: 30_000,
      failure: () => "no message was reacted to",
    });
    server.kill("SIGKILL");

    for (const id of ids) {
      await waitUntil(() => finalOutcomes(id).length > 0, {
        timeoutMs: 20_000,
        failure: () => `message ${id} has no outcome: ${JSON.stringify(h.outcomes.about(id))}`,
      });
    }
    const outcomes = ids.map((id) => finalOutcomes(id));
    // One outcome each: a reaction, or a skip saying why; no failure, nothing dropped.
    expect(outcomes.map((each) => each.length)).toEqual(ids.map(() => 1));
    const kinds = outcomes.map((each) => each[0]?.kind);
    expect(kinds.filter((kind) => kind !== "reacted" && kind !== "skipped")).toEqual([]);
    const skipped = outcomes.flat().filter((seen) => seen.kind === "skipped");
    expect(skipped.map((seen) => (seen as { reason?: string }).reason)).toEqual(
      skipped.map(() => MODEL_UNAVAILABLE),
    );
    // The kill came mid-burst: some messages were reacted to before it, some skipped after it.
    expect(reacted().length).toBeGreaterThan(0);
    expect(skipped.length).toBeGreaterThan(0);

    await readyzUntil(h, (answer) => answer.body.model === "unavailable", "the model unavailable");
    await server.restart();
    await readyzUntil(h, (answer) => answer.status === 200, "ready after the restart", 30_000);
    const after = [0, 1, 2].map((i) => h.discord.sendMessage({ content: `after the restart, message ${i}` }));
    for (const messageId of after) {
      expect(await h.outcomes.next("reacted", { messageId }, 30_000)).toBeDefined();
    }
  }, 90_000);
});

describe("a reply the bot gives up on", () => {
  let server: LlamaServer;
  let h: ServerBot;
  beforeAll(async () => {
    ({ server, h } = await serverAndBot());
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await server?.stop();
  });

  // A stopping process closes its sockets anyway; this is the abort alone (the shutdown's first step), with the bot
  // and its connection pool still up, so only the closed request can tell the server to stop.
  it("stops the server's decoding for it within 2 s, the process still running", async () => {
    const id = h.discord.sendMessage({
      content: `<@${h.discord.botUser.id}> go on and on`,
      mentionBot: true,
    });
    const { remaining } = await untilStreaming(h.discord, server, id);
    h.llm.interrupt();
    expect(remaining).toBeGreaterThan(REPLY_TOKENS / 2);
    await slotsUntil(server.url, noSlotProcessing, "every slot idle", 2_000);
    expect(await replyOutcome(h.outcomes, id)).toMatchObject({ kind: "shed", job: "reply" });
    expect(shownReply(h.discord, id).endsWith(MARKER)).toBe(true);
  }, 60_000);
});

describe("the bot process shut down mid-reply", () => {
  let server: LlamaServer;
  let discord: FakeDiscord;
  let dataDir: string;
  let bot: RunningProcess | undefined;
  beforeAll(async () => {
    server = await serve();
    discord = await new FakeDiscord().start();
    dataDir = await mkdtemp(join(tmpdir(), "moodbot-server-faults-"));
  }, 60_000);
  afterAll(async () => {
    if (bot && bot.child.exitCode === null) {
      bot.child.kill("SIGKILL");
      await bot.exited;
    }
    await discord?.stop();
    await server?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("stops the server's decoding within 2 s of SIGTERM, the reply cut short and its turn kept", async () => {
    const running = await runEntryPoint("src/index.ts", {
      ...testEnv(discord, NO_MODEL_FILE, dataDir),
      LLM_SERVER_URL: server.url,
      ...BOT_ENV,
    });
    bot = running;
    await running.whileRunning(discord.waitForReadies(1), "the gateway's READY");
    // A reaction is proof that the model server is ready for the bot.
    const first = discord.sendMessage({ content: "hello there" });
    await running.whileRunning(running.outcomes.next("reacted", { messageId: first }, 30_000), "a reaction");

    const id = discord.sendMessage({
      content: `<@${discord.botUser.id}> tell me everything`,
      mentionBot: true,
    });
    const { remaining } = await running.whileRunning(
      untilStreaming(discord, server, id),
      "the reply streaming",
    );
    running.child.kill("SIGTERM");
    // Nothing is left decoding for a bot that has gone. Left alone, the slot would have gone on for `remaining`
    // tokens: at this model's ~80-150 tokens a second on one thread, several seconds past the 2 s allowed.
    expect(remaining).toBeGreaterThan(REPLY_TOKENS / 2);
    await slotsUntil(server.url, noSlotProcessing, "every slot idle", 2_000);

    expect((await running.exited).code).toBe(0);
    expect(await replyOutcome(running.outcomes, id)).toMatchObject({ kind: "shed", job: "reply" });
    expect(running.outcomes.all("stored", { messageId: id })).toMatchObject([
      { interrupted: true, turns: 2 },
    ]);
    expect(shownReply(discord, id).endsWith(MARKER)).toBe(true);
  }, 90_000);
});
