import { percent } from "../src/wording/wording.js";
import { type RuntimesTableInput, renderRuntimes } from "./runtimesTable.js";

/*
 * The bench's tables, rendered from bench/results.json alone: `npm run bench` writes them into bench/results.md, the
 * README carries a copy, and test/unit/readmeFigures.test.ts renders them again from the committed results to
 * check that copy. Counts such as the burst's size are read from the results too, so the text says what was run.
 */

interface Timing {
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly meanEvaluatedTokens: number;
}

/** The part of bench/results.json the tables read. */
export interface BenchTableInput extends RuntimesTableInput {
  readonly machine: {
    readonly date: string;
    readonly cpu: string;
    readonly cores: number;
    readonly backend: string;
    readonly threads: number;
    readonly batchSize: number;
    readonly sentimentSequences: number;
    readonly chatSequences: number;
    readonly chatSpeedFloor: number;
    readonly node: string;
  };
  readonly tokenizer: {
    readonly messages: number;
    readonly tokens: number;
    readonly roundTripFailures: number;
    readonly differencesFromHuggingFaceTokenizer: number;
  };
  readonly passCost: {
    readonly fixedMs: number;
    readonly perTokenMs: number;
    readonly r2: number;
    readonly samples: ReadonlyArray<{ readonly tokens: number; readonly medianMs: number }>;
  };
  readonly sharing: Readonly<
    Record<
      "equal" | "unequal",
      { readonly lengths: readonly number[]; readonly togetherMs: number; readonly oneByOneMs: number }
    >
  >;
  readonly kvCache: ReadonlyArray<{
    readonly type: string;
    readonly contextRssMb: number;
    readonly pass13Ms: number;
  }>;
  readonly latency: {
    readonly bot: Timing & { readonly prefixTokens: number };
    readonly article: Timing;
    readonly speedupP50: number;
    readonly botFloorMs: number;
    readonly botOverFloor: number;
  };
  readonly throughput: Readonly<
    Record<string, { readonly perSecond: number; readonly messages: number; readonly hitRate?: number }>
  >;
  readonly chat: {
    readonly coldFirstTokenMs: number;
    readonly warmFirstTokenMs: number;
    readonly coldPromptTokens: number;
    readonly warmPromptTokens: number;
  };
  readonly alone: { readonly firstTokenMs: number; readonly tokensPerSecond: number };
  readonly burst: {
    readonly messages: number;
    readonly generatedTokens: number;
    readonly wallMs: number;
    readonly mentionFirstTokenMs: number;
    readonly tokensPerSecondDuring: number;
    readonly tokensPerSecondAfter: number;
    readonly articleBurstMs: number;
    readonly ratioToArticle: number;
    readonly ceilingMs: number;
    readonly ceilingRatio: number;
    readonly shareOfCeiling: number;
    readonly ceilingByLengthMs: number;
    readonly ceilingByLengthRatio: number;
    readonly shareOfCeilingByLength: number;
    readonly chatShareDuring: number;
    readonly chatShareAfter: number;
    readonly firstTokenOverAlone: number;
  };
  readonly eightMentionsFirstTokenMs: readonly number[];
  readonly sharedCache: { readonly shared: number; readonly separate: number } | string;
  readonly process: {
    readonly reactedWithin60s: number;
    readonly dropped: number;
    readonly wallToLastReactionMs: number;
    readonly mentionReplyStartedMs: number;
    readonly burstSpreadMs: number;
    readonly startupToModelLoadedMs: number;
    readonly startupToConnectedMs: number;
    readonly peakRssMb: number;
  };
  readonly realShape: { readonly peakRssMb: number };
}

/**
 * The bench's tables: the targets it checks, every other figure it measured, then both runtimes side by side
 * (bench/runtimesTable.ts).
 */
export function renderTable(r: BenchTableInput): string {
  const m = r.machine;
  const header = `Measured ${m.date} on ${m.cpu}, ${m.cores} cores, backend ${m.backend}, LLM_THREADS=${m.threads}, LLM_BATCH_SIZE=${m.batchSize}, LLM_SENTIMENT_SEQUENCES=${m.sentimentSequences}, LLM_CHAT_SEQUENCES=${m.chatSequences}, CHAT_SPEED_FLOOR=${m.chatSpeedFloor}, Node ${m.node}; random-weight Qwen2.5-0.5B-shape Q8_0 models.\n\n`;
  return [
    header,
    "| Target | Result | Goal | |",
    "| --- | --- | --- | --- |",
    ...targetRows(r).map((row) => `| ${row.join(" | ")} |`),
    "",
    "| Measure | Result |",
    "| --- | --- |",
    ...measureRows(r).map((row) => `| ${row.join(" | ")} |`),
    "",
    renderRuntimes(r),
  ].join("\n");
}

/** The issue's targets: result, goal, and whether it was met. */
function targetRows(r: BenchTableInput): Array<[string, string, string, string]> {
  const check = (ok: boolean) => (ok ? "✅" : "❌");
  const b = r.burst;
  const burstMessages = b.messages;
  return [
    [
      `Burst: reacted within 60 s, ${b.generatedTokens}-token reply running (bot process)`,
      `${r.process.reactedWithin60s} of ${burstMessages} (${r.process.dropped} dropped; last at ${r.process.wallToLastReactionMs} ms)`,
      `${burstMessages} of ${burstMessages}`,
      check(r.process.reactedWithin60s === burstMessages),
    ],
    [
      "Burst throughput vs the article's method (p50 × 40 / bot's wall time)",
      `${b.ratioToArticle}× (${b.articleBurstMs} / ${b.wallMs} ms)`,
      "≥ 2.5×",
      check(b.ratioToArticle >= 2.5),
    ],
    [
      "… as a share of the ceiling the measured passes allow (one fixed cost per input length in a pass)",
      `${percent(b.shareOfCeilingByLength)} (ceiling ${b.ceilingByLengthRatio}×, ${b.ceilingByLengthMs} ms)`,
      "≥ 85%",
      check(b.shareOfCeilingByLength >= 0.85),
    ],
    [
      "… and of the ideal ceiling (one fixed cost per pass, which this runtime does not allow)",
      `${percent(b.shareOfCeiling)} (ceiling ${b.ceilingRatio}×, ${b.ceilingMs} ms)`,
      "",
      "",
    ],
    [
      "Chat token rate during the burst / after it, vs the reply alone",
      `${percent(b.chatShareDuring)} / ${percent(b.chatShareAfter)} (${b.tokensPerSecondDuring} / ${b.tokensPerSecondAfter} vs ${r.alone.tokensPerSecond} tokens/s)`,
      "≥ 30%, then full",
      check(b.chatShareDuring >= 0.3 && b.chatShareAfter >= 0.9),
    ],
    [
      "Mention's first token during the burst vs alone",
      `${b.mentionFirstTokenMs} vs ${r.alone.firstTokenMs} ms (${b.firstTokenOverAlone}×)`,
      "≤ 2×",
      check(b.firstTokenOverAlone <= 2),
    ],
    [
      "Single-message sentiment vs the pass floor for its token count (median)",
      `${r.latency.botOverFloor}× (p50 ${r.latency.bot.p50Ms} ms; floor at the mean ${r.latency.bot.meanEvaluatedTokens} tokens: ${r.latency.botFloorMs} ms)`,
      "≤ 1.2× the floor",
      check(r.latency.botOverFloor <= 1.2),
    ],
    [
      "Peak RSS of the bot process (model of the real shape; the same burst)",
      `${r.realShape.peakRssMb} MB (${r.process.peakRssMb} MB with the long-reply model's extra output matrix)`,
      "≤ 1 GB",
      check(r.realShape.peakRssMb <= 1024),
    ],
  ];
}

/** Everything else the bench measured, as figures. */
function measureRows(r: BenchTableInput): Array<[string, string]> {
  const t = r.throughput;
  const perSecond = (key: string) => `${t[key]?.perSecond ?? Number.NaN}/s`;
  const shared =
    typeof r.sharedCache === "string"
      ? r.sharedCache
      : `${percent(r.sharedCache.shared)} shared / ${percent(r.sharedCache.separate)} separate`;
  return [
    [
      "Pass cost (fit over 1–64-token passes)",
      `${r.passCost.fixedMs} ms + ${r.passCost.perTokenMs} ms × tokens (R² ${r.passCost.r2}); ${r.passCost.samples.map((s) => `${s.tokens}: ${s.medianMs}`).join(", ")} ms`,
    ],
    [
      "4 classifications on 4 sequences: together / one after another",
      `lengths ${r.sharing.equal.lengths.join(", ")}: ${r.sharing.equal.togetherMs} / ${r.sharing.equal.oneByOneMs} ms; lengths ${r.sharing.unequal.lengths.join(", ")}: ${r.sharing.unequal.togetherMs} / ${r.sharing.unequal.oneByOneMs} ms`,
    ],
    [
      "KV cache of the bot's context: f16 / q8_0 (experimental)",
      r.kvCache
        .map((row) => `${row.type}: ${row.contextRssMb} MB resident, ${row.pass13Ms} ms per 13-token pass`)
        .join("; "),
    ],
    [
      "Sentiment p50 / p95, bot / article",
      `${r.latency.bot.p50Ms} / ${r.latency.bot.p95Ms} ms; ${r.latency.article.p50Ms} / ${r.latency.article.p95Ms} ms (${r.latency.speedupP50}×)`,
    ],
    [
      "Tokens per message, bot / article",
      `${r.latency.bot.meanEvaluatedTokens} / ${r.latency.article.meanEvaluatedTokens} (bot prefix ${r.latency.bot.prefixTokens}, evaluated once)`,
    ],
    [
      `Throughput, ${r.burst.messages} messages at full load`,
      `bot batched ${perSecond("batched")}, bot one at a time ${perSecond("bot")}, article ${perSecond("article")}, article + prefix reuse ${perSecond("articlePrefixReuse")}`,
    ],
    [
      `Realistic stream of ${t.streamCacheOn?.messages}: bot cache off / on / article`,
      `${perSecond("streamCacheOff")} / ${perSecond("streamCacheOn")} (hit rate ${percent(t.streamCacheOn?.hitRate ?? 0)}) / ${perSecond("articleStream")}`,
    ],
    ["Shared result cache, two processes, stream of 600", shared],
    [
      "Chat first token, 10-turn history (cold / warm)",
      `${r.chat.coldFirstTokenMs} / ${r.chat.warmFirstTokenMs} ms (${r.chat.coldPromptTokens} / ${r.chat.warmPromptTokens} prompt tokens)`,
    ],
    ["8 mentions at once in 8 channels: first tokens", `${r.eightMentionsFirstTokenMs.join(", ")} ms`],
    [
      "Bot process: reply starts during the burst / burst spread",
      `${r.process.mentionReplyStartedMs} ms / ${r.process.burstSpreadMs} ms`,
    ],
    [
      "Startup: model loaded / connected",
      `${r.process.startupToModelLoadedMs} / ${r.process.startupToConnectedMs} ms`,
    ],
    [
      "Tokenizer: bench texts, tokens, differences from HF",
      `${r.tokenizer.messages} texts, ${r.tokenizer.tokens} tokens, ${r.tokenizer.differencesFromHuggingFaceTokenizer} differences, ${r.tokenizer.roundTripFailures} round-trip failures`,
    ],
  ];
}
