import { writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { join } from "node:path";
import type { Llm } from "../src/llm/llm.js";
import { inProcessConfig, loadConfig, readEnvironment } from "../src/platform/config.js";
import { REPO_ROOT } from "../testkit/botProcess.js";
import { ensureBenchModel, ensureLongReplyBenchModel, QWEN_05B_SHAPE } from "./benchModel.js";
import { burstThroughTheBot } from "./botBurst.js";
import { renderCapacity, renderFindings } from "./findings.js";
import { measureTheRuntime } from "./inProcessRuntime.js";
import { BENCH_MESSAGES, realisticStream } from "./messages.js";
import {
  burstCeilingByLengthMs,
  burstCeilingMs,
  burstWithLongReply,
  mentionsAtOnce,
  passTime,
  replyAlone,
} from "./passes.js";
import { renderTable } from "./resultsTable.js";
import { renderRuntimes } from "./runtimesTable.js";
import { inProcessLlm, measureRuntimes, type RuntimesComparison } from "./serverRuntime.js";
import { sharedCacheHitRate } from "./sharedCache.js";
import { round } from "./stats.js";
import { botBatchedMedian, streamThroughBot } from "./throughput.js";
import { conversationFirstToken, oneMessage, withReplyFigures } from "./userFacing.js";

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
 * - Both runtimes side by side (bench/serverRuntime.ts): in-process and llama-server built from the bundle, each at
 *   its defaults and at equal settings, through `Llm`; the burst through the bot process with its model on the server.
 *
 * `npm run bench -- --runtimes` runs the last part alone (with the in-process runtime's defaults measured anew and
 * the in-process bot process's burst), prints it and writes nothing.
 */

const log = (line: string) => process.stderr.write(`${line}\n`);
const config = inProcessConfig(loadConfig(readEnvironment(), "console"), "npm run bench");
const threads = config.model.threads;
const BURST_MESSAGES = 40;
const REPLY_TOKENS = config.chat.maxReplyTokens;
const STREAM_LENGTH = 300;

/** The variables that put the bot process's model in its own process, with the bench's settings. */
const inProcessEnv = (modelPath: string) => ({
  runtimeEnv: { MODEL_PATH: modelPath, LLM_THREADS: String(threads), LLM_GPU: config.model.gpu },
  loadedLog: "model loaded",
  messages: BURST_MESSAGES,
  replyTokens: REPLY_TOKENS,
});

const burstTexts = Array.from(
  { length: BURST_MESSAGES },
  (_, i) => BENCH_MESSAGES[i % BENCH_MESSAGES.length] ?? "",
);

// ---------------------------------------------------------------------------------------------------------------

async function main() {
  const plain = await ensureBenchModel(log);
  const longReply = await ensureLongReplyBenchModel(log);
  log(`models: ${plain.path}, ${longReply.path}; threads: ${threads}`);
  const stream = realisticStream(STREAM_LENGTH);
  const runtime = await measureTheRuntime(plain.path, burstTexts, stream, config.model, log);
  const scheduler = await measureTheScheduler(plain.path, stream);
  const replies = await measureReplies(longReply.path);
  log("shared result cache, two processes…");
  const sharedCache = await sharedCacheHitRate(realisticStream(600));
  log("the burst through the real bot process, with a reply that runs to the limit…");
  const process = await burstThroughTheBot(inProcessEnv(longReply.path));
  // The long-reply model carries an untied output matrix the real model does not have: memory on the real shape.
  log("the same burst on the model of the real shape, for memory…");
  const realShape = await burstThroughTheBot(inProcessEnv(plain.path));
  const runtimes = await measureRuntimes(
    {
      plainPath: plain.path,
      longReplyPath: longReply.path,
      burstTexts,
      stream,
      replyTokens: REPLY_TOKENS,
      inProcessDefaults: inProcessDefaults(scheduler, replies),
    },
    log,
  );

  const results = collect({ runtime, scheduler, replies, sharedCache, process, realShape, runtimes });
  // The tables, then the README's reading of them and the capacity plan, all rendered from these results.
  const table = [renderTable(results), renderFindings(results), renderCapacity(results)].join("\n");
  await writeFile(join(REPO_ROOT, "bench", "results.json"), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(REPO_ROOT, "bench", "results.md"), table);
  globalThis.process.stdout.write(table);
}

/** Everything the run measured, as bench/results.json holds it. */
function collect(m: {
  runtime: Runtime;
  scheduler: Awaited<ReturnType<typeof measureTheScheduler>>;
  replies: Awaited<ReturnType<typeof measureReplies>>;
  sharedCache: Awaited<ReturnType<typeof sharedCacheHitRate>>;
  process: Results["process"];
  realShape: Results["realShape"];
  runtimes: RuntimesComparison;
}): Results {
  const { runtime, scheduler, replies, sharedCache, process, realShape, runtimes } = m;
  return {
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
    throughput: {
      batched: scheduler.batched,
      streamCacheOff: scheduler.streamCacheOff,
      streamCacheOn: scheduler.streamCacheOn,
      ...runtime.serial,
    },
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
    runtimes,
  };
}

/** The in-process runtime at its defaults, for the side-by-side: what the bench measured above, on the same Llms. */
function inProcessDefaults(
  scheduler: Awaited<ReturnType<typeof measureTheScheduler>>,
  replies: Awaited<ReturnType<typeof measureReplies>>,
) {
  return {
    plain: { single: scheduler.single, burst: scheduler.batched },
    replies: {
      withReply: withReplyFigures(replies.alone, replies.burst),
      conversation: replies.conversation,
    },
  };
}

/** `--runtimes`: the side-by-side part alone, printed; nothing is written. */
async function runtimesOnly() {
  const plain = await ensureBenchModel(log);
  const longReply = await ensureLongReplyBenchModel(log);
  const runtimes = await measureRuntimes(
    {
      plainPath: plain.path,
      longReplyPath: longReply.path,
      burstTexts,
      stream: realisticStream(STREAM_LENGTH),
      replyTokens: REPLY_TOKENS,
    },
    log,
  );
  log("the burst through the real in-process bot process, and on the model of the real shape…");
  const process = await burstThroughTheBot(inProcessEnv(longReply.path));
  const realShape = await burstThroughTheBot(inProcessEnv(plain.path));
  globalThis.process.stdout.write(
    `${JSON.stringify(runtimes, null, 2)}\n\n${renderRuntimes({ runtimes, process, realShape })}`,
  );
}

/**
 * Through the bot's own model object at its defaults: one message at a time, the burst, and the realistic stream
 * with its cache off and on.
 */
async function measureTheScheduler(modelPath: string, stream: readonly string[]) {
  log("one message at a time and throughput, through the scheduler…");
  const llm = await inProcessLlm(modelPath);
  const width = config.model.sentimentSequences;
  const single = await oneMessage(llm);
  const batched = await botBatchedMedian(llm, burstTexts);
  const streamCacheOff = await streamThroughBot(llm, stream, { cacheSize: 0, width });
  const streamCacheOn = await streamThroughBot(llm, stream, { cacheSize: 1000, width });
  await llm.close();
  return { single, batched, streamCacheOff, streamCacheOn };
}

/** A long reply alone, the same reply during a burst, a conversation's first tokens, and 8 mentions at once. */
async function measureReplies(modelPath: string) {
  log(
    `a ${REPLY_TOKENS}-token reply alone, then during a burst of ${BURST_MESSAGES}; a conversation; mentions in 8 channels…`,
  );
  const talker: Llm = await inProcessLlm(modelPath);
  const backend = talker.backend;
  const alone = await replyAlone(talker, REPLY_TOKENS);
  const burst = await burstWithLongReply(talker, REPLY_TOKENS, burstTexts);
  const conversation = await conversationFirstToken(talker, "in-process");
  const eightMentions = await mentionsAtOnce(talker, 8, 64);
  await talker.close();
  return { backend, alone, burst, conversation, eightMentions };
}

/** The burst against the article's method and against the ceilings the measured pass costs allow. */
function burstFigures(
  runtime: Runtime,
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
  tokenizer: Runtime["tokenizer"];
  passCost: Runtime["passCost"];
  kvCache: Runtime["kvCache"];
  sharing: Runtime["sharing"];
  latency: Runtime["latency"] & { botFloorMs: number; botOverFloor: number };
  throughput: Record<string, { perSecond: number; messages: number; ms: number; hitRate?: number }>;
  chat: Runtime["chatFirst"];
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
  runtimes: RuntimesComparison;
};

type Runtime = Awaited<ReturnType<typeof measureTheRuntime>>;

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
} else if (args.includes("--runtimes")) {
  await runtimesOnly();
} else {
  await main();
}
