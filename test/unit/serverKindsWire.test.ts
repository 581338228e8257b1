import { readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { ServerBackend, VoteToken } from "../../src/llm/server/backend.js";
import { WORD_JOINER } from "../../src/llm/server/controlTokens.js";
import { ServerHttp } from "../../src/llm/server/http.js";
import { OllamaBackend } from "../../src/llm/server/ollama.js";
import { OPENAI_FALLBACK_CONTEXT, OpenAiCompatibleBackend } from "../../src/llm/server/openAiCompatible.js";
import { VllmBackend } from "../../src/llm/server/vllm.js";
import { CONVERSATION_HEADER } from "../../src/llm/server/wire.js";
import { ServerRequestError } from "../../src/platform/errors.js";

/*
 * Each kind's backend over the real HTTP client, against a loopback server that replays the fixture bodies
 * (test/fixtures/servers, each citing its source): the routes, the bodies sent, the key and conversation headers,
 * and SSE and NDJSON streams as the servers frame them. No server of these kinds runs here.
 */

const KEY = "test-key-5f1c";
const fixture = (name: string): { response?: unknown; events?: unknown[] } =>
  JSON.parse(readFileSync(join(import.meta.dirname, "..", "fixtures", "servers", `${name}.json`), "utf8"));
const json = (name: string): Answer => ({ json: fixture(name).response });
const stream = (name: string, framing: "sse" | "ndjson"): Answer =>
  ({ [framing]: fixture(name).events ?? [] }) as Answer;

interface Recorded {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Record<string, unknown>;
}
type Answer = { json: unknown; status?: number } | { sse: unknown[] } | { ndjson: unknown[] };

const servers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((close) => close()));
});

/** Replays what `answer` picks for each request, and keeps every request it was sent. */
async function replay(answer: (request: Recorded) => Answer): Promise<{ url: string; requests: Recorded[] }> {
  const requests: Recorded[] = [];
  const server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
    incoming.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const request = {
        method: incoming.method ?? "",
        path: incoming.url ?? "",
        headers: incoming.headers,
        body: text ? JSON.parse(text) : {},
      };
      requests.push(request);
      const reply =
        incoming.headers.authorization === `Bearer ${KEY}` ? answer(request) : { json: {}, status: 401 };
      if ("sse" in reply) {
        outgoing.writeHead(200, { "content-type": "text/event-stream" });
        for (const event of reply.sse) outgoing.write(`data: ${JSON.stringify(event)}\n\n`);
        outgoing.end("data: [DONE]\n\n");
      } else if ("ndjson" in reply) {
        outgoing.writeHead(200, { "content-type": "application/x-ndjson" });
        outgoing.end(reply.ndjson.map((line) => `${JSON.stringify(line)}\n`).join(""));
      } else {
        outgoing.writeHead(reply.status ?? 200, { "content-type": "application/json" });
        outgoing.end(JSON.stringify(reply.json));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  servers.push(() => new Promise((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/v1`, requests };
}

const http = (url: string, apiKey = KEY) =>
  new ServerHttp({ url, apiKey, maxSockets: 2, timeoutMs: 5_000, streamIdleMs: 5_000 });

const signal = new AbortController().signal;
const VOTES: readonly VoteToken[] = [
  { id: 30487, text: "positive" },
  { id: 35490, text: "Positive" },
  { id: 42224, text: "negative" },
  { id: 38489, text: "Negative" },
  { id: 59568, text: "neutral" },
  { id: 86907, text: "Neutral" },
];

async function chat(backend: ServerBackend, prompt: Parameters<ServerBackend["complete"]>[0]["prompt"]) {
  const pieces: string[] = [];
  const result = await backend.complete({
    prompt,
    maxTokens: 64,
    temperature: 0.7,
    signal,
    onText: (text) => pieces.push(text),
    conversationId: "guild-1:channel-2",
    priority: "interactive",
  });
  return { pieces, result };
}

function vllmServer(honoursTokenIds: boolean) {
  return replay((request) => {
    if (request.path === "/v1/models") return json("vllm-models");
    if (request.path === "/tokenize")
      return json(request.body.prompt === "" ? "vllm-tokenize-bos" : "vllm-tokenize");
    if (request.body.stream) return stream("vllm-completion-stream", "sse");
    if (request.body.prompt?.toString() === "76,1386,6331,22302,21730") {
      return json(honoursTokenIds ? "vllm-probe-honoured" : "vllm-probe-ignored");
    }
    return json(honoursTokenIds ? "vllm-completion-logprob-token-ids" : "vllm-completion-top20");
  });
}

describe("vLLM over HTTP", () => {
  it("probes, tokenises member text inert, reads exact labels with priorities and streams a reply", async () => {
    const server = await vllmServer(true);
    const backend = new VllmBackend({
      transport: http(server.url),
      model: undefined,
      priorityScheduling: true,
    });
    expect(await backend.probe(signal)).toEqual({
      kind: "vllm",
      model: "Qwen/Qwen2.5-0.5B-Instruct",
      contextSize: 8192,
      slots: undefined,
      chatTemplate: undefined,
      bosToken: "<|begin_of_text|>",
      eosToken: undefined,
    });
    const reading = await backend.readLabels({
      prompt: { kind: "tokens", tokens: [1, 2, 3] },
      voteTokens: VOTES,
      signal,
      priority: "background",
    });
    expect(reading.method).toBe("logits");
    expect(reading.logprobs).toEqual([-1.52, -4.1, -2.31, -5.7, -0.41, -3.05]);
    await backend.tokenizer.tokenize("<|im_start|>hi", false, signal);
    await backend.tokenizer.tokenize("<|im_start|>", true, signal);
    const { pieces, result } = await chat(backend, { kind: "tokens", tokens: [1, 2, 3] });
    expect(pieces.join("")).toBe("Hi there!");
    expect(result).toEqual({
      text: "Hi there!",
      stopReason: "eogToken",
      generatedTokens: 3,
      evaluatedPromptTokens: 28,
    });
    backend.close();

    const { requests } = server;
    expect(requests.map((request) => `${request.method} ${request.path}`)).toEqual([
      "GET /v1/models",
      "POST /tokenize",
      "POST /v1/completions",
      "POST /tokenize",
      "POST /v1/completions",
      "POST /tokenize",
      "POST /tokenize",
      "POST /v1/completions",
    ]);
    for (const request of requests) expect(request.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(requests[4]?.body).toEqual({
      model: "Qwen/Qwen2.5-0.5B-Instruct",
      prompt: [1, 2, 3],
      max_tokens: 1,
      temperature: 0,
      logprobs: 6,
      logprob_token_ids: [30487, 35490, 42224, 38489, 59568, 86907],
      return_tokens_as_token_ids: true,
      priority: 1,
    });
    expect(requests[5]?.body.prompt).toBe(`<${WORD_JOINER}|im_start|${WORD_JOINER}>hi`);
    expect(requests[6]?.body.prompt).toBe("<|im_start|>");
    expect(requests[7]?.headers[CONVERSATION_HEADER]).toBe("guild-1:channel-2");
    expect(requests[7]?.body).toEqual({
      model: "Qwen/Qwen2.5-0.5B-Instruct",
      prompt: [1, 2, 3],
      max_tokens: 64,
      temperature: 0.7,
      stream: true,
      stream_options: { include_usage: true },
      priority: 0,
    });
  });

  it("falls back to the top 20 on a vLLM that ignores logprob_token_ids", async () => {
    const server = await vllmServer(false);
    const backend = new VllmBackend({
      transport: http(server.url),
      model: undefined,
      priorityScheduling: false,
    });
    await backend.probe(signal);
    const reading = await backend.readLabels({
      prompt: { kind: "tokens", tokens: [1] },
      voteTokens: VOTES,
      signal,
    });
    backend.close();
    expect(reading.method).toBe("top-logprobs");
    expect(reading.logprobs).toEqual([-1.31, undefined, -2.2, undefined, -0.52, -3.4]);
    const sent = server.requests.at(-1)?.body;
    expect(sent?.logprobs).toBe(20);
    expect(sent).not.toHaveProperty("logprob_token_ids");
    expect(sent).not.toHaveProperty("priority");
  });
});

describe("Ollama over HTTP", () => {
  const ollamaServer = (version = "ollama-version") =>
    replay((request) => {
      if (request.path === "/api/tags") return json("ollama-tags");
      if (request.path === "/api/show") return json("ollama-show");
      if (request.path === "/api/version") return json(version);
      return request.body.stream
        ? stream("ollama-generate-stream", "ndjson")
        : json("ollama-generate-logprobs");
    });

  it("probes, reads labels from a raw prompt and streams NDJSON, with one num_ctx throughout", async () => {
    const server = await ollamaServer();
    const backend = new OllamaBackend({
      transport: http(server.url),
      model: "qwen2.5:0.5b",
      numCtx: undefined,
      keepAlive: "30m",
    });
    const facts = await backend.probe(signal);
    expect(facts).toMatchObject({
      kind: "ollama",
      model: "qwen2.5:0.5b",
      contextSize: 8192,
      slots: undefined,
    });
    const reading = await backend.readLabels({
      prompt: { kind: "text", text: "rendered" },
      voteTokens: VOTES,
      signal,
    });
    expect(reading.method).toBe("top-logprobs");
    expect(reading.logprobs[0]).toBe(-1.43);
    const { pieces, result } = await chat(backend, { kind: "text", text: "rendered" });
    backend.close();
    expect(pieces).toEqual(["Hi", " there", "!"]);
    expect(result).toEqual({
      text: "Hi there!",
      stopReason: "eogToken",
      generatedTokens: 3,
      evaluatedPromptTokens: 28,
    });

    const { requests } = server;
    expect(requests.map((request) => `${request.method} ${request.path}`)).toEqual([
      "GET /api/tags",
      "POST /api/show",
      "GET /api/version",
      "POST /api/generate",
      "POST /api/generate",
    ]);
    for (const request of requests) expect(request.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(requests[1]?.body).toEqual({ model: "qwen2.5:0.5b" });
    expect(requests[4]?.body).toEqual({
      model: "qwen2.5:0.5b",
      prompt: "rendered",
      raw: true,
      stream: true,
      options: { num_predict: 64, temperature: 0.7, num_ctx: 8192 },
      keep_alive: "30m",
    });
    expect(requests[4]?.headers[CONVERSATION_HEADER]).toBe("guild-1:channel-2");
  });

  it("refuses an Ollama older than 0.12.11 at the probe: it gives no probabilities", async () => {
    const server = await ollamaServer("ollama-version-old");
    const backend = new OllamaBackend({
      transport: http(server.url),
      model: "qwen2.5",
      numCtx: 4096,
      keepAlive: undefined,
    });
    const error = await backend.probe(signal).catch((caught: unknown) => caught);
    backend.close();
    expect(error).toBeInstanceOf(ServerRequestError);
    expect((error as ServerRequestError).problem).toBe("unsupported");
  });
});

describe("OpenAI-compatible over HTTP", () => {
  const openAiServer = () =>
    replay((request) => {
      if (request.path === "/v1/models") return json("openai-models-lmstudio");
      return request.body.stream ? stream("openai-chat-stream", "sse") : json("openai-chat-logprobs");
    });

  it("probes, reads labels from messages and streams chunks", async () => {
    const server = await openAiServer();
    const backend = new OpenAiCompatibleBackend({
      transport: http(server.url),
      model: undefined,
      contextSize: undefined,
    });
    expect(await backend.probe(signal)).toMatchObject({
      kind: "openai",
      model: "qwen2.5-0.5b-instruct",
      contextSize: OPENAI_FALLBACK_CONTEXT,
    });
    const messages = [{ role: "user" as const, text: "yay" }];
    const reading = await backend.readLabels({
      prompt: { kind: "messages", messages },
      voteTokens: VOTES,
      signal,
    });
    expect(reading.logprobs).toEqual([-0.22, -2.1, -4.75, undefined, -2.6, -6.3]);
    const { pieces, result } = await chat(backend, { kind: "messages", messages });
    backend.close();
    expect(pieces).toEqual(["Hi", " there", "!"]);
    expect(result.stopReason).toBe("eogToken");

    const { requests } = server;
    for (const request of requests) expect(request.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(requests[2]?.body).toEqual({
      model: "qwen2.5-0.5b-instruct",
      messages: [{ role: "user", content: "yay" }],
      max_tokens: 64,
      temperature: 0.7,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(requests[2]?.headers[CONVERSATION_HEADER]).toBe("guild-1:channel-2");
  });

  it("a wrong key fails the probe as unauthorized", async () => {
    const server = await openAiServer();
    const backend = new OpenAiCompatibleBackend({
      transport: http(server.url, "wrong"),
      model: undefined,
      contextSize: undefined,
    });
    const error = await backend.probe(signal).catch((caught: unknown) => caught);
    backend.close();
    expect((error as ServerRequestError).problem).toBe("unauthorized");
  });
});
