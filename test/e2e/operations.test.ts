import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type RunningProcess, runEntryPoint } from "../../testkit/botProcess.js";
import { FakeDiscord } from "../../testkit/fakeDiscord.js";
import { testEnv } from "../../testkit/harness.js";
import { tinyModel } from "../../testkit/models.js";
import { freePort } from "../../testkit/ports.js";
import { scrape, scrapeUntil } from "../../testkit/prometheus.js";
import { RedisServer } from "../../testkit/redis.js";
import { waitUntil } from "../../testkit/waitUntil.js";

/*
 * The bot process as a supervisor and Prometheus see it: npm start with METRICS_PORT, against the loopback
 * Discord, scraped over HTTP and parsed by a Prometheus text-format parser.
 */

interface Readyz {
  status: number;
  body: { ready: boolean; model: string; gateway: string; store: { status: string; bufferedTurns: number } };
}

async function readyz(base: string): Promise<Readyz> {
  const response = await fetch(`${base}/readyz`);
  return { status: response.status, body: (await response.json()) as Readyz["body"] };
}

/** Polls /readyz (the server may not listen yet) until `done` holds for its answer. */
async function readyzUntil(base: string, done: (answer: Readyz) => boolean, what: string): Promise<Readyz> {
  let last: Readyz | undefined;
  await waitUntil(
    async () => {
      last = await readyz(base).catch(() => undefined);
      return last !== undefined && done(last);
    },
    { timeoutMs: 30_000, failure: () => `/readyz never showed ${what}; last: ${JSON.stringify(last)}` },
  );
  if (!last) throw new Error("no answer");
  return last;
}

let discord: FakeDiscord;
let modelPath: string;
let running: RunningProcess | undefined;

beforeAll(async () => {
  discord = await new FakeDiscord().start();
  modelPath = await tinyModel({ favouredToken: " lorem" });
});
afterEach(async () => {
  if (running && running.child.exitCode === null) {
    running.child.kill("SIGTERM");
    await running.exited;
  }
  running = undefined;
});
afterAll(async () => discord?.stop());

async function startBot(env: Record<string, string> = {}) {
  const port = await freePort();
  const dataDir = await mkdtemp(join(tmpdir(), "moodbot-ops-"));
  running = await runEntryPoint("src/index.ts", {
    ...testEnv(discord, modelPath, dataDir),
    METRICS_PORT: String(port),
    ...env,
  });
  return { base: `http://127.0.0.1:${port}`, bot: running };
}

describe("health checks", () => {
  it("/readyz is 503 until the gateway is connected, then 200; /healthz is 200 throughout", async () => {
    const letIn: Array<() => void> = [];
    discord.readyGate = new Promise<void>((resolve) => letIn.push(resolve));
    try {
      const { base } = await startBot();
      // The health server is up before the model loads: /readyz says when the model is in.
      const waiting = await readyzUntil(base, (answer) => answer.body.model === "loaded", "the model loaded");
      expect(waiting.status).toBe(503);
      expect(waiting.body).toMatchObject({ ready: false, model: "loaded", gateway: "disconnected" });
      expect(waiting.body.store.status).toBe("up");
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      for (const release of letIn) release();
      const ready = await readyzUntil(base, (answer) => answer.status === 200, "200");
      expect(ready.body).toMatchObject({ ready: true, model: "loaded", gateway: "connected" });
      expect((await fetch(`${base}/nothing-here`)).status).toBe(404);
    } finally {
      discord.readyGate = undefined;
    }
  });

  it("reports the store down while Redis is stopped, still ready, and up again after", async () => {
    const redis = await RedisServer.start();
    try {
      const { base } = await startBot({ STORE_URL: redis.url });
      await readyzUntil(
        base,
        (answer) => answer.status === 200 && answer.body.store.status === "up",
        "ready",
      );
      await redis.stop();
      const down = await readyzUntil(base, (answer) => answer.body.store.status === "down", "the store down");
      expect(down.status).toBe(200);
      expect((await scrape(base)).value("moodbot_store_up")).toBe(0);
      await redis.restart();
      const up = await readyzUntil(base, (answer) => answer.body.store.status === "up", "the store up");
      expect(up.status).toBe(200);
      expect((await scrape(base)).value("moodbot_store_up")).toBe(1);
    } finally {
      await redis.stop();
    }
  });
});

describe("/metrics", () => {
  it("counts messages, reactions, skips, passes, replies, 429s and gateway resumes as traffic comes", async () => {
    const { base, bot } = await startBot({ LLM_THREADS: "1" });
    await readyzUntil(base, (answer) => answer.status === 200, "ready");
    const before = await scrape(base);
    expect(before.value("moodbot_messages_seen_total")).toBe(0);
    expect(before.labelsOf("moodbot_model_info")).toEqual([
      { model: basename(modelPath), backend: "cpu", threads: "1", runtime: "in-process", method: "logits" },
    ]);

    // The first reaction PUT gets a 429 with retry_after; discord.js waits and sends it again.
    let limited = false;
    const restore = discord.override((request) => {
      if (limited || request.method !== "PUT" || !request.path.includes("/reactions/")) return undefined;
      limited = true;
      return {
        status: 429,
        body: { message: "You are being rate limited.", retry_after: 0.05, global: false },
        headers: { "retry-after": "1" },
      };
    });
    try {
      for (const text of ["what a great day", "this is awful", "the meeting is at noon"]) {
        discord.sendMessage({ content: text });
      }
      discord.sendMessage({
        content: "beep",
        author: { id: "100000000000000077", username: "helper", bot: true },
      });
      const after = await scrapeUntil(
        base,
        (s) => s.value("moodbot_messages_reacted_total") === 3,
        "three reactions",
      );
      expect(after.value("moodbot_messages_seen_total")).toBe(4);
      expect(after.value("moodbot_messages_skipped_total", { reason: "from_a_bot" })).toBe(1);
      expect(after.count("moodbot_reaction_latency_seconds")).toBe(3);
      expect(after.value("moodbot_sentiment_classifications_total")).toBe(3);
      expect(after.value("moodbot_sentiment_passes_total")).toBeGreaterThanOrEqual(1);
      expect(after.count("moodbot_sentiment_pass_duration_seconds")).toBe(
        after.value("moodbot_sentiment_passes_total"),
      );
      expect(after.value("moodbot_rest_rate_limited_total")).toBe(1);
      expect(after.value("moodbot_model_queue_depth", { priority: "background" })).toBe(0);
      expect(after.value("process_resident_memory_bytes")).toBeGreaterThan(0);
    } finally {
      restore();
    }

    // A repeated message is answered from the result cache, with no model work.
    discord.sendMessage({ content: "what a great day" });
    const cached = await scrapeUntil(base, (s) => s.value("moodbot_messages_reacted_total") === 4, "a 4th");
    expect(cached.value("moodbot_result_cache_hits_total", { cache: "local" })).toBe(1);
    expect(cached.value("moodbot_sentiment_classifications_total")).toBe(3);

    discord.sendMessage({ content: `<@${discord.botUser.id}> hello there`, mentionBot: true });
    const replied = await scrapeUntil(base, (s) => s.value("moodbot_chat_replies_total") === 1, "a reply");
    expect(replied.count("moodbot_chat_first_token_seconds")).toBe(1);
    expect(replied.count("moodbot_chat_tokens_per_second")).toBe(1);

    discord.requestReconnect();
    const resumed = await scrapeUntil(
      base,
      (s) => s.value("moodbot_gateway_resumes_total") === 1,
      "a resume",
    );
    expect(resumed.value("moodbot_gateway_reconnects_total")).toBe(1);
    await readyzUntil(base, (answer) => answer.status === 200, "ready after the resume");
    expect(bot.logs().filter((line) => line.msg === "health and metrics server listening")).toHaveLength(1);
  });

  it("stops with one clear paragraph when METRICS_PORT is taken", async () => {
    const first = await startBot();
    // The port is taken once the first bot's health server answers.
    await readyzUntil(first.base, () => true, "an answer");
    const port = new URL(first.base).port;
    const dataDir = await mkdtemp(join(tmpdir(), "moodbot-ops-"));
    const second = await runEntryPoint("src/index.ts", {
      ...testEnv(discord, modelPath, dataDir),
      METRICS_PORT: port,
    });
    const exit = await second.exited;
    expect(exit.code).toBe(1);
    expect(second.stderr()).toContain(`cannot listen on 127.0.0.1:${port}`);
    expect(second.stderr()).toContain("METRICS_PORT");
    expect(second.stderr()).not.toMatch(/\n\s+at /);
  });
});
