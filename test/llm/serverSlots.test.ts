import { once } from "node:events";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServerLlm } from "../../src/llm/server/index.js";
import type { ServerLlm } from "../../src/llm/server/serverLlm.js";
import { createLogger } from "../../src/platform/logger.js";
import { DEFAULT_PROMPTS_DIR } from "../../src/platform/promptsDir.js";
import { type ChatTurn, loadPrompts, renderChatTurns } from "../../src/prompts/prompts.js";
import { loadTasks, type Task } from "../../src/tasks/tasks.js";
import { startLlamaServer } from "../../testkit/llamaServer.js";
import { tinyModel } from "../../testkit/models.js";

/*
 * Does a burst of classifications evict a warm conversation's prefix on llama-server? docs/model-servers.md's
 * command (no -np: 4 slots over one unified KV cache, -c 8192 --kv-unified-per-slot 2048), the bot's own server
 * runtime, and a recording proxy between them that reads llama-server's own count of the prompt tokens it
 * evaluated (`timings.prompt_n`) from each answer. A conversation's first turn, then 40 sentiment reads and 8
 * moderation reads with every slot busy, then the conversation's next turn: it must evaluate only its new tokens.
 *
 * What keeps it is llama-server's host prompt cache (--cache-ram, 8192 MiB by default), not its choice of slot: a
 * slot about to be reused, or (with the unified KV cache) every idle slot when a task starts, is saved there, and
 * the next turn loads it back into whichever slot it gets. The control below shows it: without that cache the
 * burst overwrites the conversation's slot, background priority or not, so pinning slots (`id_slot`) is not needed
 * on docs/model-servers.md's command, and would only help on a server started with --cache-ram 0.
 *
 * That cache hands a saved prompt to one slot at a time: the last test checks that the copies of the sentiment
 * prefix the session leaves before it is ready serve a burst's first reactions when they reach a fresh server at
 * one moment, each on a slot of its own.
 */

const CONTEXT = 8192;
const README_ARGS = ["--kv-unified-per-slot", "2048"] as const;
const SLOTS = 4;
const SENTIMENT_READS = 40;
const TASK_READS = 8;
/** The next turn may evaluate at most this share of its prompt: the rest must come from the kept prefix. */
const WARM_SHARE = 0.25;

const prompts = loadPrompts();
const tasks = loadTasks(join(DEFAULT_PROMPTS_DIR, "tasks"));
const toxicity = (): Task => {
  const found = tasks.find((candidate) => candidate.name === "toxicity");
  if (!found) throw new Error("prompts/tasks has no toxicity task");
  return found;
};

/** One request through the proxy: its JSON body, and the JSON answer or each event of its stream. */
interface Exchange {
  readonly path: string;
  readonly body: Record<string, unknown>;
  readonly answers: Record<string, unknown>[];
}

/**
 * Forwards everything to llama-server, keeping each request and its answer, and counting requests in flight. A gate
 * holds the next few /completion requests until all of them came, then forwards them together: so they reach
 * llama-server at one moment, as a burst's first reactions do on a slower model.
 */
async function recordingProxy(target: string) {
  const exchanges: Exchange[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let gate: { readonly size: number; readonly held: (() => void)[] } | undefined;
  const throughGate = (path: string | undefined, forward: () => void) => {
    if (!gate || path !== "/completion") return forward();
    gate.held.push(forward);
    if (gate.held.length < gate.size) return;
    const { held } = gate;
    gate = undefined;
    for (const release of held) release();
  };
  const server: Server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
    incoming.on("end", () => throughGate(incoming.url, () => forward(Buffer.concat(chunks))));
    const forward = (sent: Buffer) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const upstream = request(
        `${target}${incoming.url ?? ""}`,
        { method: incoming.method, headers: incoming.headers },
        (answer) => {
          outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
          const received: Buffer[] = [];
          answer.on("data", (chunk: Buffer) => received.push(chunk));
          answer.on("end", () => {
            inFlight--;
            if (sent.length === 0) return;
            const body = JSON.parse(sent.toString("utf8")) as Record<string, unknown>;
            const text = Buffer.concat(received).toString("utf8");
            exchanges.push({ path: incoming.url ?? "", body, answers: parseAnswers(text) });
          });
          answer.pipe(outgoing);
        },
      );
      upstream.on("error", () => {
        inFlight--;
        outgoing.destroy();
      });
      upstream.end(sent);
    };
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    exchanges,
    maxInFlight: () => maxInFlight,
    resetMaxInFlight: () => {
      maxInFlight = inFlight;
    },
    /** Holds the next `size` /completion requests until all of them came. */
    gateNext: (size: number) => {
      gate = { size, held: [] };
    },
    close: () => server.close(),
  };
}

/** A JSON body, or a server-sent event stream (`data: {…}` lines). */
function parseAnswers(text: string): Record<string, unknown>[] {
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) return [JSON.parse(trimmed) as Record<string, unknown>];
  return trimmed
    .split("\n")
    .filter((line) => line.startsWith("data: ") && line !== "data: [DONE]")
    .map((line) => JSON.parse(line.slice("data: ".length)) as Record<string, unknown>);
}

/** What llama-server said about one /completion: the prompt it was sent, the tokens it evaluated, its slot. */
interface Completion {
  readonly prompt: readonly number[];
  readonly evaluated: number;
  readonly slot: number | undefined;
  readonly voteTokens: string;
  readonly streamed: boolean;
}

function completion(exchange: Exchange): Completion {
  const last = exchange.answers.at(-1);
  const timings = last?.timings as { prompt_n?: unknown } | undefined;
  if (typeof timings?.prompt_n !== "number") {
    throw new Error(`no timings.prompt_n in the answer to ${exchange.path}: ${JSON.stringify(last)}`);
  }
  return {
    prompt: exchange.body.prompt as number[],
    evaluated: timings.prompt_n,
    slot: typeof last?.id_slot === "number" ? last.id_slot : undefined,
    voteTokens: JSON.stringify(exchange.body.logit_bias ?? null),
    streamed: exchange.body.stream === true,
  };
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let length = 0;
  while (length < a.length && length < b.length && a[length] === b[length]) length++;
  return length;
}

/** A channel's conversation: a long history, so that its prompt is a few hundred tokens. */
function conversation() {
  const history: ChatTurn[] = [];
  const topics = ["the raid schedule", "the new map", "the patch notes", "the weekend event", "server rules"];
  for (const topic of topics) {
    history.push(
      { role: "user", text: `alice: what do you all think about ${topic}? I read the whole thread twice` },
      { role: "assistant", text: `Most people liked ${topic}, though a few want the timing changed.` },
    );
  }
  return {
    turns: (message: string) =>
      renderChatTurns(prompts, { botName: "moodbot", history, authorName: "alice", message }),
    remember: (message: string, reply: string) => {
      history.push({ role: "user", text: `alice: ${message}` }, { role: "assistant", text: reply });
    },
  };
}

const sentimentTexts = Array.from(
  { length: SENTIMENT_READS },
  (_, i) =>
    `message ${i}: ${["great work team", "this is broken again", "see you at nine", "lol ok"][i % 4]} #${i}`,
);
const taskTexts = Array.from(
  { length: TASK_READS },
  (_, i) => `check ${i}: you are all ${i % 2 ? "nice" : "dumb"}`,
);

interface Measurement {
  readonly firstTurn: Completion;
  readonly secondTurn: Completion;
  /** What the bot read from the server for the second turn. */
  readonly secondTurnReported: number;
  /** The burst's reads, in the order they finished. */
  readonly sentiment: readonly Completion[];
  readonly tasks: readonly Completion[];
  /** The sentiment lane's cached prefix: what every sentiment prompt shares. */
  readonly sentimentPrefix: number;
  readonly burstInFlight: number;
}

/** llama-server as docs/model-servers.md starts it, plus `extraArgs`, behind the proxy, with the bot's runtime on it. */
async function startStack(extraArgs: readonly string[]) {
  const server = await startLlamaServer({
    modelPath: await tinyModel(),
    contextSize: CONTEXT,
    extraArgs: [...README_ARGS, ...extraArgs],
  });
  const proxy = await recordingProxy(server.url);
  const llm = createServerLlm({
    logger: createLogger({ level: "silent" }),
    url: proxy.url,
    apiKey: undefined,
    kind: "auto",
    model: undefined,
    maxInFlight: undefined,
    timeoutMs: 30_000,
    streamIdleMs: 10_000,
    chatTemplatePath: undefined,
    prompts,
    tasks,
    sentiment: { queueSize: 100, maxWaitMs: 120_000 },
  });
  await llm.start();
  if (!llm.readiness.ready)
    throw new Error(`the server runtime is not ready: ${JSON.stringify(llm.readiness)}`);
  const stop = async () => {
    await llm.close();
    proxy.close();
    await server.stop();
  };
  return { llm, proxy, stop };
}

/** A conversation's turn, the burst with every slot busy, the conversation's next turn. */
async function measure(
  llm: ServerLlm,
  proxy: Awaited<ReturnType<typeof recordingProxy>>,
): Promise<Measurement> {
  const completions = () => proxy.exchanges.filter((e) => e.path === "/completion").map(completion);
  // The first /completion is one of the session's classifications before it was ready, on the sentiment prompt.
  const check = completions()[0];
  if (!check) throw new Error("the session's check classification was not recorded");
  const chat = conversation();
  const options = { channelKey: "channel-slots", maxTokens: 8, temperature: 0 };

  const first = await llm.generateChat(chat.turns("so what is the plan for tonight?"), options);
  const firstTurn = completions().at(-1);
  chat.remember("so what is the plan for tonight?", first.text);

  const before = completions().length;
  proxy.resetMaxInFlight();
  // Interactive, as /sentiment commands are: every slot is taken, the conversation's too (background work
  // would leave one free, which does not save it either: see the control below).
  await Promise.all([
    ...sentimentTexts.map((text) => llm.classifySentiment(text, { priority: "interactive" })),
    ...taskTexts.map((text) => llm.runTask(toxicity(), text, { priority: "interactive" })),
  ]);
  const burst = completions().slice(before);
  const burstInFlight = proxy.maxInFlight();

  const second = await llm.generateChat(chat.turns("and who is leading it?"), options);
  const secondTurn = completions().at(-1);
  if (!firstTurn?.streamed || !secondTurn?.streamed) throw new Error("the chat turns were not recorded");
  const sentiment = burst.filter((read) => read.voteTokens === check.voteTokens);
  const sentimentPrompts = [check, ...sentiment].map((read) => read.prompt);
  return {
    firstTurn,
    secondTurn,
    secondTurnReported: second.evaluatedPromptTokens,
    sentiment,
    tasks: burst.filter((read) => read.voteTokens !== check.voteTokens),
    sentimentPrefix: sentimentPrompts.reduce((a, b) => a.slice(0, commonPrefix(a, b))).length,
    burstInFlight,
  };
}

/** The numbers, for every assertion's message: evaluated/prompt tokens for each request. */
function describeMeasurement(m: Measurement): string {
  const reads = (list: readonly Completion[]) =>
    list.map((read) => `${read.evaluated}/${read.prompt.length}`);
  return JSON.stringify({
    firstTurn: `${m.firstTurn.evaluated}/${m.firstTurn.prompt.length} on slot ${m.firstTurn.slot}`,
    secondTurn: `${m.secondTurn.evaluated}/${m.secondTurn.prompt.length} on slot ${m.secondTurn.slot}`,
    burstInFlight: m.burstInFlight,
    sentimentPrefix: m.sentimentPrefix,
    sentiment: reads(m.sentiment).join(" "),
    tasks: reads(m.tasks).join(" "),
  });
}

describe("a warm conversation on llama-server as docs/model-servers.md starts it, through a burst of classifications", () => {
  let stack: Awaited<ReturnType<typeof startStack>>;
  beforeAll(async () => {
    stack = await startStack([]);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("keeps the conversation's prefix, and the classifications keep the sentiment prefix", async () => {
    const m = await measure(stack.llm, stack.proxy);
    const said = describeMeasurement(m);
    expect(m.firstTurn.evaluated, said).toBeGreaterThan(300);
    expect(m.burstInFlight, said).toBe(SLOTS);
    expect(m.sentiment.length, said).toBe(SENTIMENT_READS);
    expect(m.tasks.length, said).toBe(TASK_READS);
    // What the bot reads from the server is llama-server's own count.
    expect(m.secondTurnReported, said).toBe(m.secondTurn.evaluated);
    // Only the reply and the new message: everything the first turn's prompt held came from the cache.
    const shared = commonPrefix(m.firstTurn.prompt, m.secondTurn.prompt);
    expect(shared, said).toBe(m.firstTurn.prompt.length);
    expect(m.secondTurn.evaluated, said).toBeLessThanOrEqual(m.secondTurn.prompt.length - shared + 1);
    expect(m.secondTurn.evaluated, said).toBeLessThan(WARM_SHARE * m.secondTurn.prompt.length);
    // A cached prefix is handed to one slot at a time: the session left a copy for each reaction in flight, and
    // an interactive read on a slot that found none evaluates it again. Every later read evaluates only its message
    // and the suffix.
    const cold = m.sentiment.filter((read) => read.evaluated > read.prompt.length - m.sentimentPrefix);
    expect(cold.length, said).toBeLessThan(SLOTS);
  });
});

describe("the control: the same burst on llama-server without its host prompt cache (--cache-ram 0)", () => {
  let stack: Awaited<ReturnType<typeof startStack>>;
  beforeAll(async () => {
    stack = await startStack(["--cache-ram", "0"]);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("evicts the conversation: the host cache keeps it, not llama-server's choice of slot", async () => {
    const m = await measure(stack.llm, stack.proxy);
    // If this fails, llama-server's slot choice alone now keeps a conversation apart from the classifications.
    expect(m.secondTurn.evaluated, describeMeasurement(m)).toBeGreaterThan(0.9 * m.secondTurn.prompt.length);
  });
});

describe("a burst's first reactions on a fresh llama-server as docs/model-servers.md starts it", () => {
  let stack: Awaited<ReturnType<typeof startStack>>;
  beforeAll(async () => {
    stack = await startStack([]);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("all find the sentiment prefix cached: the session left a copy of it for every reaction in flight", async () => {
    const { llm, proxy } = stack;
    const completions = () => proxy.exchanges.filter((e) => e.path === "/completion").map(completion);
    // The session's classifications before it was ready: one for each of the server's slots, each on a message of
    // its own, so that llama-server keeps a copy of the prefix for each.
    const warm = completions();
    expect(warm.length).toBe(SLOTS);
    proxy.resetMaxInFlight();
    // Background work leaves the last slot free: three reactions reach llama-server at once, each on a slot of
    // its own, as a burst's first ones do.
    const reactions = SLOTS - 1;
    proxy.gateNext(reactions);
    await Promise.all(sentimentTexts.map((text) => llm.classifySentiment(text)));
    const burst = completions().slice(warm.length);
    const prefix = [...warm, ...burst]
      .map((read) => read.prompt)
      .reduce((a, b) => a.slice(0, commonPrefix(a, b))).length;
    const said = JSON.stringify({
      prefix,
      warm: warm.map((read) => `${read.evaluated}/${read.prompt.length}`),
      burst: burst.map((read) => `${read.evaluated}/${read.prompt.length}`),
    });
    expect(burst.length, said).toBe(SENTIMENT_READS);
    expect(proxy.maxInFlight(), said).toBe(reactions);
    // A read that evaluated more than its message and the suffix evaluated the prefix again.
    const cold = burst.filter((read) => read.evaluated > read.prompt.length - prefix);
    expect(
      cold.map((read) => read.evaluated),
      said,
    ).toEqual([]);
  });
});
