import { join } from "node:path";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterEach, describe, expect, it } from "vitest";
import { loadModel } from "../../src/llm/inProcess/model.js";
import type { Llm } from "../../src/llm/llm.js";
import { openModel } from "../../src/llm/openModel.js";
import { type MetricSources, Metrics } from "../../src/observability/metrics.js";
import { createLogger } from "../../src/platform/logger.js";
import { DEFAULT_PROMPTS_DIR } from "../../src/platform/promptsDir.js";
import { loadPrompts } from "../../src/prompts/prompts.js";
import { loadTasks } from "../../src/tasks/tasks.js";
import { type FakeModelServer, serverFixture, startFakeModelServer } from "../../testkit/fakeModelServer.js";
import { testModelOptions, tinyModel } from "../../testkit/models.js";
import { type MetricFamily, Scrape } from "../../testkit/prometheus.js";
import { RecordingLlm } from "../../testkit/recordingLlm.js";

/*
 * Llm.inFlight, and the moodbot_model_server_in_flight gauge that reads it: a reply held open on a loopback
 * OpenAI-compatible server counts while it streams, through the result cache and the recorder above the runtime,
 * and stops counting once it ends. In-process, the running generation counts on the seam, and the server gauge
 * stays out of it.
 */

const prompts = loadPrompts();
const tasks = loadTasks(join(DEFAULT_PROMPTS_DIR, "tasks"));
const store: MetricSources["store"] = { reachable: true, bufferedTurns: 0, errors: 0 };
const GAUGE = "moodbot_model_server_in_flight";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function gauge(metrics: Metrics): Promise<number | undefined> {
  const scrape = new Scrape(parsePrometheusTextFormat(await metrics.text()) as MetricFamily[]);
  return scrape.families.some((family) => family.name === GAUGE) ? scrape.value(GAUGE) : undefined;
}

/** An OpenAI-compatible server whose streamed replies wait for `release` after their first piece. */
async function holdingServer(release: Promise<void>): Promise<FakeModelServer> {
  const server = await startFakeModelServer((request) => {
    if (request.path === "/v1/models") return { json: serverFixture("openai-models-lmstudio").response };
    if (request.body.stream)
      return { sse: serverFixture("openai-chat-stream").events ?? [], holdUntil: release };
    return { json: serverFixture("openai-chat-logprobs").response };
  });
  cleanups.push(() => server.close());
  return server;
}

describe("requests in flight", () => {
  it("a reply held open on the server reads 1 on the gauge while it streams, and 0 once it ended", async () => {
    let release = () => {};
    const server = await holdingServer(new Promise<void>((resolve) => (release = resolve)));
    const opened = await openModel(
      {
        runtime: "server",
        url: server.url,
        apiKey: undefined,
        kind: "openai",
        model: undefined,
        maxInFlight: undefined,
        timeoutMs: 10_000,
        streamIdleMs: 10_000,
        chatTemplatePath: undefined,
        priorities: false,
        numCtx: undefined,
        keepAlive: undefined,
      },
      {
        logger: createLogger({ level: "silent" }),
        prompts,
        tasks,
        sentiment: { queueSize: 10, maxWaitMs: 30_000, cacheSize: 100 },
        chatSpeedFloor: 0.35,
      },
    );
    cleanups.push(() => opened.close());
    const llm = new RecordingLlm(opened);
    expect(llm.readiness).toEqual({ ready: true });
    const metrics = new Metrics({ processMetrics: false });
    metrics.watch({ model: llm, store }, { threads: undefined });
    expect(await gauge(metrics)).toBe(0);

    let firstPiece = () => {};
    const streaming = new Promise<void>((resolve) => (firstPiece = resolve));
    const reply = llm.generateChat([{ role: "user", text: "hi" }], {
      channelKey: "guild-1:channel-2",
      maxTokens: 16,
      temperature: 0.7,
      onText: () => firstPiece(),
    });
    await streaming;
    expect(llm.inFlight).toBe(1);
    expect(await gauge(metrics)).toBe(1);

    release();
    expect((await reply).text).toBe("Hi there!");
    expect(llm.inFlight).toBe(0);
    expect(await gauge(metrics)).toBe(0);
  });

  it("in-process, the generation running counts on the seam, and the server gauge is not read", async () => {
    const llm: Llm = await loadModel(testModelOptions({ path: await tinyModel() }));
    cleanups.push(() => llm.close());
    const metrics = new Metrics({ processMetrics: false });
    metrics.watch({ model: llm, store }, { threads: 1 });
    const whileStreaming: number[] = [];
    await llm.generateChat([{ role: "user", text: "hi" }], {
      channelKey: "guild-1:channel-2",
      maxTokens: 4,
      temperature: 0,
      onText: () => whileStreaming.push(llm.inFlight),
    });
    expect(whileStreaming.length).toBeGreaterThan(0);
    expect(Math.min(...whileStreaming)).toBeGreaterThanOrEqual(1);
    expect(llm.inFlight).toBe(0);
    expect(await gauge(metrics)).toBe(0);
  });
});
