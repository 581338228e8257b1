import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterEach, describe, expect, it } from "vitest";
import type { ModelReadiness, ModelRuntimeInfo } from "../../src/llm/llm.js";
import { NO_CACHE_STATS } from "../../src/llm/llm.js";
import {
  type HealthServer,
  type Readiness,
  startHealthServer,
} from "../../src/observability/healthServer.js";
import { type MetricSources, Metrics } from "../../src/observability/metrics.js";
import { createLogger } from "../../src/platform/logger.js";
import { type MetricFamily, Scrape, scrape } from "../../testkit/prometheus.js";

/*
 * /readyz and the model server's metrics, over HTTP on 127.0.0.1, as a supervisor and Prometheus read them. The
 * model is a plain object with the fields the health server and the metrics read from an Llm: its readiness, its
 * runtime and its counts; a test changes them as a model server would come and go.
 */

const logger = createLogger({ level: "silent" });

/** The model's side of the metrics and of /readyz, changed by each test. */
function fakeModel(runtime: ModelRuntimeInfo) {
  return {
    runtime,
    backend: "server",
    readiness: { ready: false, cause: "the model server at 127.0.0.1:9 is unreachable" } as ModelReadiness,
    queueDepth: { interactive: 0, background: 0, chat: 0 },
    cacheStats: NO_CACHE_STATS,
    inFlight: 0,
  };
}

const store: MetricSources["store"] = { reachable: true, bufferedTurns: 0, errors: 0 };
let health: HealthServer | undefined;
afterEach(async () => {
  await health?.close();
  health = undefined;
});

async function serve(metrics: Metrics, readiness: () => Readiness): Promise<string> {
  health = await startHealthServer({ host: "127.0.0.1", port: 0, metrics, readiness, logger });
  return `http://127.0.0.1:${health.port}`;
}

async function readyz(base: string) {
  const response = await fetch(`${base}/readyz`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe("/readyz with the model's readiness", () => {
  it("is 503 naming the cause while the model is not ready, 200 once it is, and 503 again when it goes", async () => {
    const model = fakeModel({ kind: "llama.cpp", method: "logits", model: "qwen" });
    let gatewayConnected = true;
    const base = await serve(new Metrics({ processMetrics: false }), () => ({
      model: model.readiness,
      gatewayConnected,
      store: { reachable: true, bufferedTurns: 0 },
    }));

    const away = await readyz(base);
    expect(away.status).toBe(503);
    expect(away.body).toEqual({
      ready: false,
      model: "unavailable",
      modelCause: "the model server at 127.0.0.1:9 is unreachable",
      gateway: "connected",
      store: { status: "up", bufferedTurns: 0 },
    });

    model.readiness = { ready: true };
    const ready = await readyz(base);
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({
      ready: true,
      model: "loaded",
      gateway: "connected",
      store: { status: "up", bufferedTurns: 0 },
    });

    model.readiness = { ready: false, cause: "the model server refused LLM_SERVER_API_KEY (401)" };
    const refused = await readyz(base);
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ model: "unavailable", modelCause: model.readiness.cause });

    // A ready model does not make up for a gateway that is down.
    model.readiness = { ready: true };
    gatewayConnected = false;
    expect((await readyz(base)).status).toBe(503);
  });

  it("says loading, and 503, before the model is there", async () => {
    const base = await serve(new Metrics({ processMetrics: false }), () => ({
      model: undefined,
      gatewayConnected: true,
      store: undefined,
    }));
    const answer = await readyz(base);
    expect(answer.status).toBe(503);
    expect(answer.body).toEqual({
      ready: false,
      model: "loading",
      gateway: "connected",
      store: { status: "opening", bufferedTurns: 0 },
    });
  });
});

describe("the model server's metrics", () => {
  it("time requests by kind, count errors by cause, read the requests in flight and whether the model is up", async () => {
    const metrics = new Metrics({ processMetrics: false });
    const model = fakeModel({ kind: "vllm", method: "logits", model: "Qwen/Qwen2.5-0.5B-Instruct" });
    metrics.watch({ model, store }, { threads: undefined });
    const base = await serve(metrics, () => ({ model: model.readiness, gatewayConnected: true, store }));

    const down = await scrape(base);
    expect(down.value("moodbot_model_up")).toBe(0);

    metrics.observeServerRequest({ kind: "probe", durationMs: 3, problem: "unreachable" });
    metrics.observeServerRequest({ kind: "probe", durationMs: 2, problem: "unreachable" });
    metrics.observeServerRequest({ kind: "classify", durationMs: 60_000, problem: "timeout" });
    metrics.observeServerRequest({ kind: "probe", durationMs: 12, problem: undefined });
    metrics.observeServerRequest({ kind: "tokenize", durationMs: 4, problem: undefined });
    metrics.observeServerRequest({ kind: "classify", durationMs: 80, problem: undefined });
    metrics.observeServerRequest({ kind: "classify", durationMs: 120, problem: undefined });
    metrics.observeServerRequest({ kind: "chat", durationMs: 2_500, problem: undefined });
    model.readiness = { ready: true };
    model.inFlight = 3;

    const up = await scrape(base);
    expect(up.value("moodbot_model_up")).toBe(1);
    expect(up.value("moodbot_model_server_in_flight")).toBe(3);
    expect(up.family("moodbot_model_server_request_seconds").type).toBe("HISTOGRAM");
    // The parser drops a labelled histogram's _count and _sum: they are read from the text itself.
    const text = await (await fetch(`${base}/metrics`)).text();
    const sample = (series: string, kind: string) =>
      Number(
        text.match(
          new RegExp(`^moodbot_model_server_request_seconds_${series}\\{kind="${kind}"\\} (\\S+)$`, "m"),
        )?.[1],
      );
    expect(sample("count", "classify")).toBe(2);
    expect(sample("count", "probe")).toBe(1);
    expect(sample("count", "tokenize")).toBe(1);
    expect(sample("count", "chat")).toBe(1);
    expect(sample("sum", "classify")).toBeCloseTo(0.2, 6);
    expect(sample("sum", "chat")).toBeCloseTo(2.5, 6);
    const errors = "moodbot_model_server_errors_total";
    expect(up.value(errors, { cause: "unreachable" })).toBe(2);
    expect(up.value(errors, { cause: "unreachable", kind: "probe" })).toBe(2);
    expect(up.value(errors, { cause: "timeout", kind: "classify" })).toBe(1);
    expect(up.value(errors)).toBe(3);
  });

  it("moodbot_model_info names the runtime, the method and the model in use, read again after a reconnect", async () => {
    const metrics = new Metrics({ processMetrics: false });
    const model = fakeModel({ kind: "ollama", method: "top-logprobs", model: "qwen2.5:0.5b" });
    metrics.watch({ model, store }, { threads: undefined });
    const info = async () => parse(await metrics.text()).labelsOf("moodbot_model_info");
    expect(await info()).toEqual([
      { runtime: "ollama", method: "top-logprobs", model: "qwen2.5:0.5b", backend: "server", threads: "" },
    ]);
    // The server came back serving another model: only the one in use now is reported.
    model.runtime = { kind: "ollama", method: "top-logprobs", model: "llama3.2:1b" };
    expect(await info()).toEqual([
      { runtime: "ollama", method: "top-logprobs", model: "llama3.2:1b", backend: "server", threads: "" },
    ]);
  });

  it("moodbot_model_info in-process: runtime in-process, the logits method, the file and its threads", async () => {
    const metrics = new Metrics({ processMetrics: false });
    // In-process there is no count of server requests.
    const { inFlight: _none, ...inProcess } = fakeModel({
      kind: "in-process",
      method: "logits",
      model: "tiny.gguf",
    });
    const model = { ...inProcess, backend: "cpu", readiness: { ready: true } as ModelReadiness };
    metrics.watch({ model, store }, { threads: 2 });
    const scraped = parse(await metrics.text());
    expect(scraped.labelsOf("moodbot_model_info")).toEqual([
      { runtime: "in-process", method: "logits", model: "tiny.gguf", backend: "cpu", threads: "2" },
    ]);
    expect(scraped.value("moodbot_model_up")).toBe(1);
  });
});

function parse(text: string): Scrape {
  return new Scrape(parsePrometheusTextFormat(text) as MetricFamily[]);
}
