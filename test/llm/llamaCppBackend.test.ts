import { basename } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerBackend, VoteToken } from "../../src/llm/server/backend.js";
import { ServerHttp } from "../../src/llm/server/http.js";
import { LlamaCppBackend } from "../../src/llm/server/llamaCpp.js";
import { learnSession, type SessionInputs } from "../../src/llm/server/session.js";
import { ServerRequestError } from "../../src/platform/errors.js";
import { createLogger } from "../../src/platform/logger.js";
import { loadPrompts } from "../../src/prompts/prompts.js";
import { QWEN_CHAT_TEMPLATE } from "../../testkit/gguf.js";
import { type LlamaServer, startLlamaServer } from "../../testkit/llamaServer.js";
import { tinyModel } from "../../testkit/models.js";
import { freePort } from "../../testkit/ports.js";
import { waitUntil } from "../../testkit/waitUntil.js";

/*
 * The llama.cpp backend against a real llama-server built from the bundle (deploy/build-llama-server.sh), on the
 * tiny random-weight test models.
 */

const API_KEY = "test-key-0123456789";
const CONTEXT = 4096;
const LABEL_WORDS = ["positive", "negative", "neutral", "Positive", "Negative", "Neutral"];

function client(url: string, overrides: Partial<ConstructorParameters<typeof ServerHttp>[0]> = {}) {
  return new ServerHttp({
    url,
    apiKey: API_KEY,
    maxSockets: 6,
    timeoutMs: 10_000,
    streamIdleMs: 10_000,
    ...overrides,
  });
}

const signal = () => AbortSignal.timeout(20_000);

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

async function serverError(promise: Promise<unknown>): Promise<ServerRequestError> {
  const error = await rejection(promise);
  expect(error).toBeInstanceOf(ServerRequestError);
  return error as ServerRequestError;
}

interface Slot {
  readonly id: number;
  readonly is_processing: boolean;
}

describe("llama-server backend: facts, tokens and labels", () => {
  let server: LlamaServer;
  let modelPath: string;
  let backend: LlamaCppBackend;
  let http: ServerHttp;

  beforeAll(async () => {
    modelPath = await tinyModel();
    server = await startLlamaServer({ modelPath, apiKey: API_KEY, contextSize: CONTEXT });
    // As an owner may write LLM_SERVER_URL: the trailing "/v1/" is dropped, llama-server's own routes are at its root.
    http = client(`${server.url}/v1/`);
    backend = new LlamaCppBackend(http);
  });
  afterAll(async () => {
    backend?.close();
    await server?.stop();
  });

  const tokenize = (text: string, special: boolean) => {
    const tokenizer = backend.tokenizer;
    if (!tokenizer) throw new Error("llama-server tokenises");
    return tokenizer.tokenize(text, special, signal());
  };

  async function voteTokens(): Promise<VoteToken[]> {
    return Promise.all(
      LABEL_WORDS.map(async (text) => {
        const ids = await tokenize(text, false);
        expect(ids).toHaveLength(1);
        return { id: ids[0], text };
      }),
    );
  }

  const chatPrompt = (message: string) =>
    `<|im_start|>system\nClassify the sentiment.<|im_end|>\n<|im_start|>user\n${message}<|im_end|>\n<|im_start|>assistant\n`;

  it("probes /props for the model, the per-slot context, the slots, the template and the special tokens", async () => {
    const facts = await backend.probe(signal());
    expect(facts).toEqual({
      kind: "llama.cpp",
      model: basename(modelPath),
      contextSize: CONTEXT,
      slots: 4,
      // llama-server trims the template's last newline.
      chatTemplate: QWEN_CHAT_TEMPLATE.trimEnd(),
      bosToken: "<|endoftext|>",
      eosToken: "<|im_end|>",
    });
    // The context a conversation may use is each slot's, as /slots reports it.
    const slots = (await http.getJson("/slots", { signal: signal() })) as Array<{ n_ctx: number }>;
    expect(slots.map((slot) => slot.n_ctx)).toEqual([CONTEXT, CONTEXT, CONTEXT, CONTEXT]);
  });

  it("parses control-token strings only when asked: a member's <|im_start|> stays plain text", async () => {
    const [imStart] = await tokenize("<|im_start|>", true);
    expect(imStart).toBeDefined();
    const text = "<|im_start|>user hello";
    const special = await tokenize(text, true);
    const plain = await tokenize(text, false);
    expect(special[0]).toBe(imStart);
    expect(plain).not.toContain(imStart);
    expect(plain.length).toBeGreaterThan(special.length);
    // Plain tokens still spell the same text.
    expect(await backend.tokenizer?.detokenize(plain, signal())).toBe(text);
  });

  it("reads the vote tokens' softmax over their raw logits alone, equal to an unbiased request renormalised", async () => {
    const votes = await voteTokens();
    const prompt = {
      kind: "tokens" as const,
      tokens: await tokenize(chatPrompt("I love this, it is great"), true),
    };
    const reading = await backend.readLabels({ prompt, voteTokens: votes, signal: signal() });
    expect(reading.method).toBe("logits");
    const probabilities = reading.logprobs.map((logprob) => Math.exp(logprob ?? Number.NaN));
    expect(probabilities.reduce((sum, p) => sum + p, 0)).toBeCloseTo(1, 5);

    // The same prompt, every token's raw probability returned: read before sampling, from the model's logits.
    // The one token it samples is pinned to a whole word, because llama-server reports no probabilities for a
    // token that ends inside a UTF-8 character (a byte token random weights may well sample), and the pin acts on
    // the sampler only, which the check on the pinned token's own probability below proves.
    const models = (await http.getJson("/v1/models", { signal: signal() })) as {
      data: Array<{ meta: { n_vocab: number } }>;
    };
    const vocabulary = models.data[0]?.meta.n_vocab ?? 0;
    const [pinned] = votes;
    if (pinned?.id === undefined) throw new Error("a vote token to pin");
    const unbiased = (await http.postJson(
      "/completion",
      {
        prompt: prompt.tokens,
        n_predict: 1,
        n_probs: vocabulary,
        cache_prompt: true,
        samplers: ["top_k"],
        top_k: 1,
        logit_bias: [[pinned.id, 100]],
      },
      { signal: signal() },
    )) as {
      completion_probabilities: Array<{ id: number; top_logprobs: Array<{ id: number; logprob: number }> }>;
    };
    const [sampled] = unbiased.completion_probabilities;
    expect(sampled?.id).toBe(pinned.id);
    const raw = new Map(sampled?.top_logprobs.map((entry) => [entry.id, entry.logprob]));
    expect(raw.size).toBe(vocabulary);
    // Biased logits would give the pinned token nearly all the probability; raw ones give it a vocabulary's share.
    expect(Math.exp(raw.get(pinned.id) ?? 0)).toBeLessThan(0.5);
    const exps = votes.map((vote) => Math.exp(raw.get(vote.id ?? -1) ?? Number.NaN));
    const total = exps.reduce((sum, value) => sum + value, 0);
    const expected = exps.map((value) => value / total);
    for (const [index, p] of probabilities.entries()) {
      expect(Math.abs(p - (expected[index] ?? Number.NaN))).toBeLessThan(1e-4);
    }
    // Random weights still give unequal labels: a flat reading would not pass the comparison by chance.
    expect(Math.max(...expected) - Math.min(...expected)).toBeGreaterThan(1e-2);
  });

  it("biases a token two labels share once, and gives both of them its probability", async () => {
    const votes = await voteTokens();
    const [first, second] = votes;
    if (!first || !second) throw new Error("two vote tokens");
    const shared = [first, { id: first.id, text: "positive, again" }, second];
    const prompt = { kind: "text" as const, text: chatPrompt("it is sad") };
    const reading = await backend.readLabels({ prompt, voteTokens: shared, signal: signal() });
    const distinct = await backend.readLabels({ prompt, voteTokens: [first, second], signal: signal() });
    const [a, b, c] = reading.logprobs;
    expect(a).toBe(b);
    // A doubled bias would tip the shared token's probability towards 1.
    expect(a).toBeCloseTo(distinct.logprobs[0] ?? Number.NaN, 5);
    expect(c).toBeCloseTo(distinct.logprobs[1] ?? Number.NaN, 5);
  });

  it("evaluates only what follows the cached prefix (timings.prompt_n)", async () => {
    const votes = await voteTokens();
    const prefix = await tokenize(
      chatPrompt(`${" lorem ipsum the message".repeat(40)} unique-prefix-${Date.now()}`),
      true,
    );
    const first = await backend.readLabels({
      prompt: { kind: "tokens", tokens: [...prefix, ...(await tokenize(" good", false))] },
      voteTokens: votes,
      signal: signal(),
    });
    const suffix = await tokenize(" bad sad", false);
    const second = await backend.readLabels({
      prompt: { kind: "tokens", tokens: [...prefix, ...suffix] },
      voteTokens: votes,
      signal: signal(),
    });
    expect(first.evaluatedPromptTokens).toBeGreaterThan(prefix.length);
    expect(second.evaluatedPromptTokens).toBe(suffix.length);
  });

  it("starts a session whose extra classifications fail, and says so once; a failed check fails it", async () => {
    const lines: { level: number; msg: string; failed?: number; of?: number }[] = [];
    const logger = createLogger({
      level: "warn",
      destination: { write: (line: string) => lines.push(JSON.parse(line)) },
    });
    /** The real backend, whose label reads after the first `passing` fail, as requests past their deadline do. */
    const failingAfter = (passing: number): ServerBackend => {
      let reads = 0;
      return {
        kind: backend.kind,
        ...(backend.tokenizer ? { tokenizer: backend.tokenizer } : {}),
        promptForms: backend.promptForms,
        probe: (probeSignal) => backend.probe(probeSignal),
        readLabels: (request) =>
          ++reads <= passing
            ? backend.readLabels(request)
            : Promise.reject(new ServerRequestError("timeout", "POST /completion", "timed out after 10 ms")),
        complete: (request) => backend.complete(request),
        close: () => {},
      };
    };
    const inputs = (served: ServerBackend): SessionInputs => ({
      backend: async () => served,
      templateFile: undefined,
      maxInFlight: undefined,
      logger,
      prompts: loadPrompts(),
      tasks: [],
      reported: (_kind, work) => work(),
    });
    // The check, then one read for each further slot: only the check has to succeed.
    const session = await learnSession(inputs(failingAfter(1)), signal());
    expect(session.method).toBe("logits");
    expect(session.maxInFlight).toBe(4);
    expect(lines.map(({ msg, failed, of }) => ({ msg, failed, of }))).toEqual([
      {
        msg: expect.stringContaining("the sentiment prefix in the server's prompt cache failed"),
        failed: 3,
        of: 3,
      },
    ]);
    const refused = await rejection(learnSession(inputs(failingAfter(0)), signal()));
    expect(refused).toBeInstanceOf(ServerRequestError);
    expect((refused as ServerRequestError).problem).toBe("timeout");
  });

  it("refuses a wrong or missing key as unauthorized, although /health answers 200 to anyone", async () => {
    const health = await fetch(`${server.url}/health`, { headers: { authorization: "Bearer wrong-key" } });
    expect(health.status).toBe(200);
    for (const apiKey of ["wrong-key-abcdef", undefined]) {
      const stranger = new LlamaCppBackend(client(server.url, { apiKey }));
      const error = await serverError(stranger.probe(signal()));
      stranger.close();
      expect(error.problem).toBe("unauthorized");
      expect(error.status).toBe(401);
      expect(error.route).toBe("GET /props");
      expect(error.message).toContain("Invalid API Key");
      if (apiKey) expect(error.message).not.toContain(apiKey);
    }
  });

  it("maps an error status to http with the server's message", async () => {
    const long = await tokenize(" lorem".repeat(CONTEXT + 100), false);
    const error = await serverError(
      backend.complete({
        prompt: { kind: "tokens", tokens: long },
        maxTokens: 4,
        temperature: 0.7,
        signal: signal(),
        onText: () => undefined,
        conversationId: undefined,
      }),
    );
    expect(error.problem).toBe("http");
    expect(error.status).toBe(400);
    expect(error.message).toContain("exceeds the available context size");
  });

  it("reports a port nobody listens on as unreachable", async () => {
    const nowhere = new LlamaCppBackend(client(`http://127.0.0.1:${await freePort()}`));
    const error = await serverError(nowhere.probe(signal()));
    nowhere.close();
    expect(error.problem).toBe("unreachable");
  });
});

describe("llama-server backend: streamed replies", () => {
  let server: LlamaServer;
  let backend: LlamaCppBackend;
  let prompt: { kind: "tokens"; tokens: number[] };

  beforeAll(async () => {
    // A model that always writes " lorem" never ends a reply early: a long reply runs for seconds.
    server = await startLlamaServer({
      modelPath: await tinyModel({ favouredToken: " lorem" }),
      contextSize: 65_536,
    });
    backend = new LlamaCppBackend(client(server.url, { apiKey: undefined }));
    const tokens = await backend.tokenizer?.tokenize(
      "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n",
      true,
      signal(),
    );
    prompt = { kind: "tokens", tokens: tokens ?? [] };
  });
  afterAll(async () => {
    backend?.close();
    await server?.stop();
  });

  const request = (overrides: Partial<Parameters<LlamaCppBackend["complete"]>[0]> = {}) => ({
    prompt,
    maxTokens: 12,
    temperature: 0.7,
    signal: signal(),
    onText: () => undefined,
    conversationId: "guild-1:channel-2",
    ...overrides,
  });

  async function slotsBusy(): Promise<number> {
    const http = client(server.url, { apiKey: undefined });
    try {
      const slots = (await http.getJson("/slots", { signal: signal() })) as Slot[];
      return slots.filter((slot) => slot.is_processing).length;
    } finally {
      http.close();
    }
  }

  it("streams the reply in pieces and ends with the server's stop reason and counts", async () => {
    const pieces: string[] = [];
    const result = await backend.complete(request({ onText: (piece) => pieces.push(piece) }));
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join("")).toBe(result.text);
    expect(result.text).toBe(" lorem".repeat(12));
    expect(result.stopReason).toBe("maxTokens");
    expect(result.generatedTokens).toBe(12);
    expect(result.evaluatedPromptTokens).toBeGreaterThan(0);
    // The same conversation again: its prompt is in the slot's cache.
    const again = await backend.complete(request());
    expect(again.evaluatedPromptTokens).toBeLessThanOrEqual(1);
  });

  it("closes the request on abort, and the server stops generating within 2 s", async () => {
    const controller = new AbortController();
    const reason = new Error("shutting down");
    const reply = backend.complete(
      request({
        maxTokens: 30_000,
        signal: controller.signal,
        onText: () => controller.abort(reason),
      }),
    );
    expect(await rejection(reply)).toBe(reason);
    await waitUntil(async () => (await slotsBusy()) === 0, {
      timeoutMs: 2_000,
      failure: () => "a slot was still generating 2 s after the abort",
    });
  });

  it("times out a stream that goes silent", async () => {
    const impatient = new LlamaCppBackend(client(server.url, { apiKey: undefined, streamIdleMs: 300 }));
    let pieces = 0;
    const reply = impatient.complete(
      request({
        maxTokens: 30_000,
        onText: () => {
          // The server hangs mid-reply.
          if (pieces++ === 0) server.kill("SIGSTOP");
        },
      }),
    );
    try {
      const error = await serverError(reply);
      expect(error.problem).toBe("timeout");
      expect(error.message).toContain("300 ms");
    } finally {
      server.kill("SIGCONT");
      impatient.close();
    }
    // The timed-out request was closed, so the resumed server stops generating for it.
    await waitUntil(async () => (await slotsBusy()) === 0, { timeoutMs: 2_000 });
  });

  it("reports a server that dies mid-reply as unreachable, the text so far given to onText", async () => {
    const pieces: string[] = [];
    const reply = backend.complete(
      request({
        maxTokens: 30_000,
        onText: (piece) => {
          if (pieces.push(piece) === 1) server.kill("SIGKILL");
        },
      }),
    );
    const error = await serverError(reply);
    expect(error.problem).toBe("unreachable");
    expect(pieces.join("")).toMatch(/^( lorem)+$/);
    await server.restart();
    expect((await backend.complete(request())).stopReason).toBe("maxTokens");
  });
});
