import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createServerLlm } from "../../src/llm/server/index.js";
import { ModelUnavailableError } from "../../src/platform/errors.js";
import { createLogger } from "../../src/platform/logger.js";
import { DEFAULT_PROMPTS_DIR } from "../../src/platform/promptsDir.js";
import { loadPrompts } from "../../src/prompts/prompts.js";
import { loadTasks } from "../../src/tasks/tasks.js";
import { type FakeModelServer, serverFixture, startFakeModelServer } from "../../testkit/fakeModelServer.js";
import { waitUntil } from "../../testkit/waitUntil.js";

/*
 * A server that returns no probabilities is refused for classification: the model stays not ready, /readyz's cause
 * says why in one paragraph (reactions, moderation and the neutral threshold all need a confidence), and that
 * paragraph is logged once however often the bot retries. The server is a loopback OpenAI-compatible API answering
 * with the fixtures' shapes.
 */

const prompts = loadPrompts();
const tasks = loadTasks(join(DEFAULT_PROMPTS_DIR, "tasks"));
const CHAT = "/v1/chat/completions";
const WARN = 40;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** An OpenAI-compatible server whose label answers are `labelAnswer`. */
async function openAiServer(labelAnswer: unknown): Promise<FakeModelServer> {
  const server = await startFakeModelServer((request) =>
    request.path === "/v1/models"
      ? { json: serverFixture("openai-models-lmstudio").response }
      : { json: labelAnswer },
  );
  cleanups.push(() => server.close());
  return server;
}

function serverLlm(url: string) {
  const lines: { level: number; msg: string; cause?: string }[] = [];
  const logger = createLogger({
    level: "info",
    destination: { write: (line: string) => lines.push(JSON.parse(line)) },
  });
  const llm = createServerLlm({
    logger,
    url,
    apiKey: undefined,
    kind: "openai",
    model: undefined,
    maxInFlight: undefined,
    timeoutMs: 5_000,
    streamIdleMs: 5_000,
    chatTemplatePath: undefined,
    prompts,
    tasks,
    sentiment: { queueSize: 10, maxWaitMs: 30_000 },
    retry: { firstMs: 5, maxMs: 20 },
  });
  cleanups.push(() => llm.close());
  return { llm, warnings: () => lines.filter((line) => line.level === WARN) };
}

/**
 * Until the bot has asked for a classification `times` times (the first contact and its retries), or the model
 * became ready, which the test then refutes at once.
 */
const labelRequests = (
  server: FakeModelServer,
  llm: { readonly readiness: { ready: boolean } },
  times: number,
) =>
  waitUntil(
    () => llm.readiness.ready || server.requests.filter((request) => request.path === CHAT).length >= times,
    { failure: () => `only ${server.requests.length} requests reached the server` },
  );

describe("a server that returns no probabilities", () => {
  it("is refused for classification: not ready with that cause, the paragraph logged once", async () => {
    const server = await openAiServer(serverFixture("openai-chat-no-logprobs").response);
    const { llm, warnings } = serverLlm(server.url);
    await llm.start();
    await labelRequests(server, llm, 4);

    const readiness = llm.readiness;
    expect(readiness.ready).toBe(false);
    const cause = readiness.ready ? "" : readiness.cause;
    expect(cause).toContain("the model server cannot do what the bot needs");
    expect(cause).toContain(
      "POST /v1/chat/completions returned no token probabilities, and classification needs them: reactions, " +
        "moderation and the neutral threshold all rest on a confidence",
    );
    expect(cause).toContain("Use a server and model that return logprobs");
    // The label request asked for them: the server, not the bot, left them out.
    const asked = server.requests.find((request) => request.path === CHAT)?.body;
    expect(asked).toMatchObject({ logprobs: true, top_logprobs: 20, max_tokens: 1 });

    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]?.cause).toBe("unsupported");
    expect(warnings()[0]?.msg).toContain(cause);
    expect(warnings()[0]?.msg).toContain("The bot stays up and not ready");

    const refused = await llm.classifySentiment("what a day").catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ModelUnavailableError);
    expect((refused as Error).message).toContain("returned no token probabilities");
  });

  it("is refused when its top log-probabilities hold none of the labels", async () => {
    const answer = structuredClone(serverFixture("openai-chat-logprobs").response) as {
      choices: { logprobs: { content: { top_logprobs: { token: string; logprob: number }[] }[] } }[];
    };
    const first = answer.choices[0]?.logprobs.content[0];
    if (!first) throw new Error("the fixture openai-chat-logprobs has no first token");
    first.top_logprobs = [
      { token: "the", logprob: -0.5 },
      { token: "pos", logprob: -1.2 },
    ];
    const server = await openAiServer(answer);
    const { llm, warnings } = serverLlm(server.url);
    await llm.start();
    await labelRequests(server, llm, 3);

    const readiness = llm.readiness;
    expect(readiness.ready).toBe(false);
    expect(readiness.ready ? "" : readiness.cause).toContain(
      "returned no probabilities for any sentiment label, and classification needs them: reactions, moderation " +
        "and the neutral threshold all rest on a confidence",
    );
    expect(warnings()).toHaveLength(1);
  });
});
