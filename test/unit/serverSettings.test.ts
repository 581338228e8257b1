import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createServerLlm, type ServerModelOptions } from "../../src/llm/server/index.js";
import { loadConfig } from "../../src/platform/config.js";
import { createLogger } from "../../src/platform/logger.js";
import { DEFAULT_PROMPTS_DIR } from "../../src/platform/promptsDir.js";
import { loadPrompts } from "../../src/prompts/prompts.js";
import { loadTasks, type Task } from "../../src/tasks/tasks.js";
import {
  type FakeModelServer,
  type FakeRequest,
  serverFixture,
  startFakeModelServer,
} from "../../testkit/fakeModelServer.js";

/*
 * The kind-specific server settings, from the environment to the request body: LLM_SERVER_PRIORITIES puts each
 * request's priority into vLLM's, LLM_SERVER_NUM_CTX and LLM_SERVER_KEEP_ALIVE into Ollama's num_ctx and
 * keep_alive. The runtime runs whole (createServerLlm: detection, session, admission) against loopback servers that
 * answer with the fixtures' shapes; a detected kind that does not read a setting is warned about once.
 */

const prompts = loadPrompts();
const tasks = loadTasks(join(DEFAULT_PROMPTS_DIR, "tasks"));
const toxicity = tasks.find((task) => task.name === "toxicity") as Task;
const WARN = 40;
const CHATML =
  "{%- for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endfor %}" +
  "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function templateFile(): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), "moodbot-template-")), "chatml.jinja");
  await writeFile(path, CHATML);
  return path;
}

/** The server settings as the config parses them from `env`, for a server at `url`. */
function settingsFrom(url: string, env: Record<string, string>) {
  const { model } = loadConfig({ DISCORD_TOKEN: "t", LLM_SERVER_URL: url, ...env });
  if (model.runtime !== "server") throw new Error("LLM_SERVER_URL did not choose the server runtime");
  return model;
}

async function started(options: Omit<ServerModelOptions, "logger" | "prompts" | "tasks" | "sentiment">) {
  const lines: { level: number; msg: string; ignored?: string[] }[] = [];
  const logger = createLogger({
    level: "info",
    destination: { write: (line: string) => lines.push(JSON.parse(line)) },
  });
  const llm = createServerLlm({
    ...options,
    logger,
    prompts,
    tasks,
    sentiment: { queueSize: 10, maxWaitMs: 30_000 },
    retry: { firstMs: 5, maxMs: 20 },
  });
  cleanups.push(() => llm.close());
  await llm.start();
  expect(llm.readiness).toEqual({ ready: true });
  return { llm, warnings: () => lines.filter((line) => line.level === WARN) };
}

async function serve(
  answer: (request: FakeRequest) => ReturnType<Parameters<typeof startFakeModelServer>[0]>,
) {
  const server = await startFakeModelServer(answer);
  cleanups.push(() => server.close());
  return server;
}

/**
 * vLLM over a word-level tokenizer (each word and each run of spaces one id), so that labels have first tokens of
 * their own; every id asked for in logprob_token_ids comes back, as on a vLLM with that field.
 */
function vllmServer(): Promise<FakeModelServer> {
  const ids = new Map<string, number>();
  const tokenize = (text: string) =>
    (text.match(/\s+|\S+/g) ?? []).map((word) => {
      if (!ids.has(word)) ids.set(word, 1000 + ids.size);
      return ids.get(word) as number;
    });
  return serve((request) => {
    if (request.path === "/v1/models") return { json: serverFixture("vllm-models").response };
    if (request.path === "/tokenize") {
      const tokens = tokenize(String(request.body.prompt));
      return { json: { count: tokens.length, max_model_len: 8192, tokens, token_strs: null } };
    }
    // Detected by its /version (llama-server's /props is missing).
    if (request.path === "/version") return { json: { version: "0.11.0" } };
    if (request.path !== "/v1/completions") return { json: { error: "not found" }, status: 404 };
    if (request.body.stream) return { sse: serverFixture("vllm-completion-stream").events ?? [] };
    const wanted = (request.body.logprob_token_ids as number[] | undefined) ?? [];
    const top = Object.fromEntries(wanted.map((id, index) => [`token_id:${id}`, -1 - index / 4]));
    const choice = { index: 0, text: "x", logprobs: { top_logprobs: [top] }, finish_reason: "length" };
    return { json: { choices: [choice], usage: { prompt_tokens: 40, completion_tokens: 1 } } };
  });
}

function ollamaServer(): Promise<FakeModelServer> {
  return serve((request) => {
    if (request.path === "/api/tags") return { json: serverFixture("ollama-tags").response };
    if (request.path === "/api/show") return { json: serverFixture("ollama-show").response };
    if (request.path === "/api/version") return { json: serverFixture("ollama-version").response };
    if (request.path !== "/api/generate") return { json: { error: "not found" }, status: 404 };
    return request.body.stream
      ? { ndjson: serverFixture("ollama-generate-stream").events ?? [] }
      : { json: serverFixture("ollama-generate-logprobs").response };
  });
}

async function work(llm: ReturnType<typeof createServerLlm>) {
  await llm.classifySentiment("what a day");
  await llm.runTask(toxicity, "you are great");
  await llm.generateChat([{ role: "user", text: "hi" }], {
    channelKey: "guild-1:channel-2",
    maxTokens: 16,
    temperature: 0.7,
  });
}

const completions = (server: FakeModelServer) =>
  server.requests.filter((request) => request.path === "/v1/completions");

describe("LLM_SERVER_PRIORITIES on vLLM", () => {
  it("on: each request carries its priority, background work 1 and interactive work 0", async () => {
    const server = await vllmServer();
    const settings = settingsFrom(server.url, { LLM_SERVER_PRIORITIES: "on" });
    const { llm, warnings } = await started({ ...settings, chatTemplatePath: await templateFile() });
    const learned = completions(server).length;
    await work(llm);
    const [sentiment, task, chat] = completions(server).slice(learned);
    expect(sentiment?.body).toMatchObject({ priority: 1, max_tokens: 1 });
    expect(task?.body).toMatchObject({ priority: 0, max_tokens: 1 });
    expect(chat?.body).toMatchObject({ priority: 0, stream: true });
    expect(warnings()).toEqual([]);
  });

  it("off, the default: no request carries a priority, which vLLM would refuse", async () => {
    const server = await vllmServer();
    const { llm } = await started({
      ...settingsFrom(server.url, {}),
      chatTemplatePath: await templateFile(),
    });
    await work(llm);
    expect(completions(server).length).toBeGreaterThan(3);
    for (const request of completions(server)) expect(request.body).not.toHaveProperty("priority");
  });
});

describe("LLM_SERVER_NUM_CTX and LLM_SERVER_KEEP_ALIVE on Ollama", () => {
  const generates = (server: FakeModelServer) =>
    server.requests.filter((request) => request.path === "/api/generate");

  it("every request asks for that num_ctx and keep_alive, and the budgets follow the context", async () => {
    const server = await ollamaServer();
    const settings = settingsFrom(server.url, {
      LLM_SERVER_KIND: "ollama",
      LLM_SERVER_NUM_CTX: "3072",
      LLM_SERVER_KEEP_ALIVE: "30m",
      LLM_SERVER_MODEL: "qwen2.5:0.5b",
    });
    const { llm } = await started({ ...settings, chatTemplatePath: await templateFile() });
    expect(llm.contextSize).toBe(3072);
    await work(llm);
    expect(generates(server).length).toBeGreaterThan(3);
    for (const request of generates(server)) {
      expect(request.body).toMatchObject({ options: { num_ctx: 3072 }, keep_alive: "30m" });
    }
  });

  it("a keep_alive of -1 goes as the number -1; unset, neither is sent beyond the Modelfile's num_ctx", async () => {
    const forever = await ollamaServer();
    const kept = await started({
      ...settingsFrom(forever.url, { LLM_SERVER_KEEP_ALIVE: "-1", LLM_SERVER_MODEL: "qwen2.5:0.5b" }),
      chatTemplatePath: await templateFile(),
    });
    await work(kept.llm);
    for (const request of generates(forever)) expect(request.body.keep_alive).toBe(-1);

    const plain = await ollamaServer();
    const unset = await started({
      ...settingsFrom(plain.url, { LLM_SERVER_MODEL: "qwen2.5:0.5b" }),
      chatTemplatePath: await templateFile(),
    });
    await work(unset.llm);
    for (const request of generates(plain)) {
      expect(request.body).not.toHaveProperty("keep_alive");
      // The Modelfile's (ollama-show: 8192), asked for explicitly so that Ollama never reloads the model.
      expect(request.body).toMatchObject({ options: { num_ctx: 8192 } });
    }
  });
});

describe("a setting the detected kind does not read", () => {
  it("is warned about once, naming it and its kind, however often the bot learns the server again", async () => {
    const server = await serve((request) => {
      if (request.path === "/v1/models") return { json: serverFixture("openai-models-lmstudio").response };
      if (request.path === "/v1/chat/completions")
        return { json: serverFixture("openai-chat-logprobs").response };
      // llama-server's /props, vLLM's /version and Ollama's /api/version are missing: an OpenAI-compatible API.
      return { json: { error: "not found" }, status: 404 };
    });
    const settings = settingsFrom(server.url, {
      LLM_SERVER_PRIORITIES: "on",
      LLM_SERVER_NUM_CTX: "4096",
      LLM_SERVER_KEEP_ALIVE: "",
    });
    const { llm, warnings } = await started(settings);
    expect(llm.runtime.kind).toBe("openai");
    await llm.reload(prompts, tasks);
    await llm.reload(prompts, tasks);
    expect(llm.readiness).toEqual({ ready: true });
    expect(server.requests.filter((request) => request.path === "/props")).toHaveLength(3);
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]?.msg).toBe(
      "The model server was detected as openai, and these settings are for another kind of server, so they are " +
        "ignored: LLM_SERVER_PRIORITIES (vllm), LLM_SERVER_NUM_CTX (ollama). Remove them to silence this.",
    );
    expect(warnings()[0]?.ignored).toEqual(["LLM_SERVER_PRIORITIES", "LLM_SERVER_NUM_CTX"]);
  });
});
