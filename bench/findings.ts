import { EVALUATIONS_PER_COLLECTION } from "../src/llm/inProcess/samplerCollector.js";
import { percent } from "../src/wording/wording.js";

/*
 * The README's reading of a bench run, rendered from bench/results.json: every figure in it comes from the run, so
 * the prose cannot drift from the numbers. `npm run bench` writes it into bench/results.md, the README carries a
 * copy, and test/unit/readmeFigures.test.ts checks that the copy is what this renders from the committed results.
 */

/** The part of bench/results.json this reads. */
export interface BenchFindingsInput {
  readonly machine: {
    /** The CPU's model name, its core count and the backend the model ran on, as the run found them. */
    readonly cpu: string;
    readonly cores: number;
    readonly backend: string;
    readonly chatSpeedFloor: number;
    readonly chatSequences: number;
    readonly sentimentSequences: number;
  };
  readonly model: { readonly vocabularySize: number };
  readonly passCost: { readonly fixedMs: number; readonly perTokenMs: number; readonly r2: number };
  readonly sharing: {
    readonly equal: {
      readonly lengths: readonly number[];
      readonly togetherMs: number;
      readonly oneByOneMs: number;
    };
    readonly unequal: {
      readonly lengths: readonly number[];
      readonly togetherMs: number;
      readonly oneByOneMs: number;
    };
  };
  readonly kvCache: ReadonlyArray<{
    readonly type: string;
    readonly contextRssMb: number;
    readonly pass13Ms: number;
  }>;
  readonly latency: {
    readonly bot: { readonly p50Ms: number; readonly meanEvaluatedTokens: number };
    readonly article: { readonly meanEvaluatedTokens: number };
    readonly speedupP50: number;
    readonly botOverFloor: number;
  };
  readonly throughput: Readonly<
    Record<string, { readonly perSecond: number; readonly messages: number; readonly hitRate?: number }>
  >;
  readonly sharedCache: { readonly shared: number; readonly separate: number } | string;
  readonly burst: {
    readonly messages: number;
    readonly generatedTokens: number;
    readonly ratioToArticle: number;
    readonly ceilingByLengthMs: number;
    readonly ceilingByLengthRatio: number;
    readonly shareOfCeilingByLength: number;
    readonly ceilingRatio: number;
    readonly chatShareDuring: number;
    readonly chatShareAfter: number;
    readonly firstTokenOverAlone: number;
  };
  readonly eightMentionsFirstTokenMs: readonly number[];
  readonly process: {
    readonly reactedWithin60s: number;
    readonly dropped: number;
    readonly wallToLastReactionMs: number;
    readonly startupToModelLoadedMs: number;
    /** The backend the bot process loaded the model on. */
    readonly backend: string;
  };
  readonly realShape: { readonly peakRssMb: number };
  /** Both runtimes side by side (bench/serverRuntime.ts): what the capacity plan with servers reads. */
  readonly runtimes: {
    readonly settings: { readonly threads: number };
    readonly serverStream: {
      readonly messages: number;
      readonly perSecond: number;
      readonly hitRate: number;
    };
    readonly serverBotProcess: { readonly peakRssMb: number; readonly cpuMsPerMessage: number };
  };
}

/** The throughput target the bench checks the burst against. */
const BURST_TARGET = 2.5;
/** Tokens each of the eight simultaneous mentions generates in the bench (bench/passes.ts). */
const EIGHT_MENTIONS_TOKENS = 64;
/** The capacity plan leaves this share of a process's time for mentions. */
const MENTION_SHARE = 0.2;
/** Sustained message rates the capacity table plans for. */
const PLANNED_RATES = [25, 50, 100];
/** A bot process holding no model is planned at this share of one core: room for its gateway and collections. */
const BOT_CORE_SHARE = 0.5;

const seconds = (ms: number) => (ms / 1000).toFixed(1);
const counted = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight"];
const words = (n: number) => counted[n] ?? String(n);

/** What computed the passes in this run: the CPU's cores, or the GPU backend the model was on. */
function computedOn(m: BenchFindingsInput["machine"]): string {
  return m.backend === "cpu"
    ? `${words(m.cores)} cores (${m.cpu}, no GPU)`
    : `the ${m.backend} backend (host: ${words(m.cores)} cores, ${m.cpu})`;
}

/** The backend a process loaded the model on, in words. */
const backendInWords = (backend: string) =>
  backend === "cpu" ? "the CPU (no GPU backend in use)" : `the ${backend} GPU backend`;

export function renderFindings(r: BenchFindingsInput): string {
  const t = r.throughput;
  const perSecond = (key: string) => t[key]?.perSecond ?? Number.NaN;
  const bot = perSecond("bot");
  const article = perSecond("article");
  const articlePrefixReuse = perSecond("articlePrefixReuse");
  const [f16, q8] = [
    r.kvCache.find((row) => row.type === "f16"),
    r.kvCache.find((row) => row.type === "q8_0"),
  ];
  const shared =
    typeof r.sharedCache === "string"
      ? r.sharedCache
      : `the hit rate was ${percent(r.sharedCache.shared)} against ${percent(r.sharedCache.separate)} with a cache each`;
  const sequences = r.machine.sentimentSequences + r.machine.chatSequences + 1;
  const samplerMb = (r.model.vocabularySize * 12) / 1e6;
  // At the bot's tokens per message, which part of a pass's cost is larger: the fixed one or the per-token one.
  const tokens = r.latency.bot.meanEvaluatedTokens;
  const perTokenPart = tokens * r.passCost.perTokenMs;
  const dominant =
    perTokenPart >= r.passCost.fixedMs
      ? `per-token compute dominates at the bot's ${tokens} tokens a message`
      : `the fixed cost of a pass dominates at the bot's ${tokens} tokens a message`;
  return [
    "What the numbers say (from the run above; timings on this machine vary from run to run, so compare ratios):",
    "",
    `- **The burst.** ${r.burst.messages} messages over 4 channels, then a mention whose reply runs to ${r.burst.generatedTokens} tokens:`,
    `  ${r.process.reactedWithin60s} were reacted to within 60 s through the real bot process (the last ${seconds(r.process.wallToLastReactionMs)} s after the first`,
    `  message, ${r.process.dropped === 0 ? "none" : r.process.dropped} dropped). The reply kept ${percent(r.burst.chatShareDuring)} of its speed alone while the reactions were`,
    `  queued and ${percent(r.burst.chatShareAfter)} after, and the mention's first token came in ${r.burst.firstTokenOverAlone}× its time with nothing else queued.`,
    `- **Throughput against the article's method: ${r.burst.ratioToArticle}×${r.burst.ratioToArticle >= BURST_TARGET ? `, meeting the ${BURST_TARGET}× target` : `, short of the ${BURST_TARGET}× target`}.** The pass-cost model`,
    `  is ${r.passCost.fixedMs} ms per pass plus ${r.passCost.perTokenMs} ms per token (fitted over passes of 1 to 64 tokens, R² ${r.passCost.r2})`,
    `  on ${computedOn(r.machine)}: ${dominant}, and a reply kept at ${percent(r.machine.chatSpeedFloor)} of its speed`,
    "  takes its share of every second.",
    "  Under the rule this runtime follows (one fixed cost per input length in a pass), the least time the model allows",
    `  for this burst is ${seconds(r.burst.ceilingByLengthMs)} s, a ratio of ${r.burst.ceilingByLengthRatio}×, and the bot reached ${percent(r.burst.shareOfCeilingByLength)} of it. Even with one`,
    `  fixed cost per pass (a unified KV cache, which node-llama-cpp does not offer) the ceiling would be ${r.burst.ceilingRatio}×.`,
    `- **At full load without a reply running:** the bot batched classifies ${perSecond("batched")} messages a second, one at a`,
    `  time ${bot}, the article's method ${article} and the article's method with its instruction cached ${articlePrefixReuse}:`,
    `  caching the prefix closes ${percent((articlePrefixReuse - article) / (bot - article))} of the article's gap to the bot one at a time, and reading the label`,
    "  probabilities in one pass the rest.",
    `- **One message** takes ${r.latency.bot.p50Ms} ms at the median, ${r.latency.botOverFloor}× the pass floor for its token count and`,
    `  ${r.latency.speedupP50}× faster than the article's method (${r.latency.bot.meanEvaluatedTokens} tokens evaluated against ${r.latency.article.meanEvaluatedTokens}).`,
    `- **Sharing a pass:** ${words(r.sharing.equal.lengths.length)} classifications of ${r.sharing.equal.lengths[0]} tokens took ${r.sharing.equal.togetherMs} ms together against`,
    `  ${r.sharing.equal.oneByOneMs} ms one after another; ${words(r.sharing.unequal.lengths.length)} of ${r.sharing.unequal.lengths.join(", ")} tokens took ${r.sharing.unequal.togetherMs} against ${r.sharing.unequal.oneByOneMs} ms.`,
    `- **The result cache** answered ${percent(t.streamCacheOn?.hitRate ?? 0)} of the realistic stream (${perSecond("streamCacheOn")} against ${perSecond("streamCacheOff")} messages a`,
    `  second). Shared through Redis between two processes that each see every other message, ${shared}:`,
    "  each process's own cache already answers most repeats, so sharing pays where shards see the same short messages",
    "  for the first time.",
    `- **Mentions in 8 channels at once** got their first tokens at ${r.eightMentionsFirstTokenMs.join(", ")} ms: with`,
    `  \`LLM_CHAT_SEQUENCES=${r.machine.chatSequences}\`, ${words(r.machine.chatSequences)} replies (of ${EIGHT_MENTIONS_TOKENS} tokens here) are written at a time; each further chat sequence`,
    "  costs a context's worth of KV memory.",
    `- **Memory.** Peak RSS of the bot process through the burst was ${r.realShape.peakRssMb} MB on the model of the real shape:`,
    `  the model file (mapped), the KV cache of ${words(sequences)} sequences (${words(r.machine.sentimentSequences)} sentiment, ${words(r.machine.chatSequences)} chat, one for \`/intent\`), llama.cpp's`,
    `  work buffers and the runtime. node-llama-cpp's experimental q8_0 KV cache took ${q8?.contextRssMb} MB for this context`,
    `  against ${f16?.contextRssMb} MB at f16, at ${q8?.pass13Ms} against ${f16?.pass13Ms} ms per 13-token pass; node-llama-cpp marks it unstable`,
    '  ("may crash the process"), so moodbot keeps f16.',
    `  - node-llama-cpp gives every evaluation a sampler whose native part (${samplerMb.toFixed(1)} MB with Qwen's vocabulary) lives until`,
    "    V8 collects the small object that owns it, and V8 cannot see that memory. Every npm script that runs the model",
    "    starts Node.js with `--max-semi-space-size=2`, which collects them while evaluations run one at a time, and",
    "    `--expose-gc`: when evaluations share passes their wrappers outlive young-generation collections, so the model's",
    `    owner runs a full collection every ${EVALUATIONS_PER_COLLECTION} evaluations (\`src/llm/inProcess/samplerCollector.ts\`).`,
    "    `test/llm/evaluationMemory.test.ts` measures both, with and without the flags.",
    `- **Startup** to the model loaded took ${seconds(r.process.startupToModelLoadedMs)} s, with the model on ${backendInWords(r.process.backend)}.`,
    "",
  ].join("\n");
}

/** How many processes like the bench's a sustained message rate needs, from the realistic stream's measured rate. */
export function renderCapacity(r: BenchFindingsInput): string {
  const processKind = `${r.machine.cores}-core${r.machine.backend === "cpu" ? "" : ` ${r.machine.backend}`}`;
  const stream = r.throughput.streamCacheOn;
  const measured = stream?.perSecond ?? Number.NaN;
  const plannable = measured * (1 - MENTION_SHARE);
  const processes = (rate: number) => Math.ceil(rate / plannable);
  return [
    "**Capacity.** Each process keeps its own scheduler, so capacity adds up per process. The benchmark pushed its",
    `realistic stream (${stream?.messages} messages, ${percent(stream?.hitRate ?? 0)} answered by the result cache) through one ${processKind} process's sentiment`,
    `path at ${measured} messages a second with the model busy all the time. Planning on ${MENTION_SHARE === 0.2 ? "a fifth" : percent(MENTION_SHARE)} of the time for`,
    `mentions leaves about ${plannable.toFixed(1)} messages a second:`,
    "",
    `| Sustained human messages per second | ${processKind} processes (one per shard) |`,
    "| --- | --- |",
    ...PLANNED_RATES.map((rate) => `| ${rate} | ${processes(rate)} |`),
    "",
    `(processes = ⌈rate ÷ ${plannable.toFixed(1)}⌉; timings on this machine varied between runs, so leave headroom.)`,
    "",
    renderServerCapacity(r),
  ].join("\n");
}

/**
 * The same plan with the model on inference servers: bot processes that hold no model, plus servers. Only a CPU
 * llama-server is measured (the one the bench builds and starts); a GPU server's capacity is not.
 */
function renderServerCapacity(r: BenchFindingsInput): string {
  const { serverStream: stream, serverBotProcess: bot, settings } = r.runtimes;
  const perServer = stream.perSecond * (1 - MENTION_SHARE);
  const perBot = (BOT_CORE_SHARE * 1000) / bot.cpuMsPerMessage;
  const servers = (rate: number) => Math.ceil(rate / perServer);
  const bots = (rate: number) => Math.max(1, Math.ceil(rate / perBot));
  const serverKind = `CPU llama-servers (${settings.threads} threads each)`;
  return [
    "**With the model on servers** (`LLM_SERVER_URL`), capacity is bot processes plus inference servers. One",
    `llama-server on this machine's CPU, with ${settings.threads} threads as above, carried the same stream at ${stream.perSecond} messages a second`,
    `(${percent(stream.hitRate)} answered by the bot's result cache): with a fifth of its time for mentions, about ${perServer.toFixed(1)} a second a`,
    `server. A bot process that holds no model peaked at ${bot.peakRssMb} MB through the burst and spent ${bot.cpuMsPerMessage} ms of CPU a message;`,
    `planned at ${percent(BOT_CORE_SHARE)} of one core, one carries about ${perBot.toFixed(0)} messages a second:`,
    "",
    `| Sustained human messages per second | ${serverKind} | bot processes (at least one per shard) |`,
    "| --- | --- | --- |",
    ...PLANNED_RATES.map((rate) => `| ${rate} | ${servers(rate)} | ${bots(rate)} |`),
    "",
    `(servers = ⌈rate ÷ ${perServer.toFixed(1)}⌉, bot processes = ⌈rate ÷ ${perBot.toFixed(0)}⌉. GPU capacity is not measured: the bench's`,
    "llama-server is a CPU build on this machine's cores, so measure a GPU server's own rate before planning on it.)",
    "",
  ].join("\n");
}
