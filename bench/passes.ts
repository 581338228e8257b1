import type { LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";
import type { Llm } from "../src/llm/llm.js";
import { type ChatTurn, loadPrompts, renderChatTurns } from "../src/prompts/prompts.js";
import { BENCH_MESSAGES } from "./messages.js";
import { median, round } from "./stats.js";

/**
 * The pass-cost model and the scenarios a server owner feels, measured on the bot's own model object (ScheduledLlm:
 * the scheduler, the lanes and the caches of production) with exact token times from its streaming callback.
 */

export interface PassCostModel {
  /** What a pass costs however few tokens it carries: streaming the weights once. */
  readonly fixedMs: number;
  /** What each token adds to a pass. */
  readonly perTokenMs: number;
  readonly samples: ReadonlyArray<{ tokens: number; medianMs: number }>;
  /** How well the line fits the medians (coefficient of determination). */
  readonly r2: number;
}

const PASS_SIZES = [1, 2, 4, 8, 13, 16, 32, 64] as const;
const PASS_REPEATS = 7;

/**
 * Times passes of n tokens on a sequence that holds a cached prefix (as the sentiment sequences do), and fits
 * time = fixed + n × per token by least squares over the medians.
 */
export async function measurePassCost(
  model: LlamaModel,
  sequence: LlamaContextSequence,
): Promise<PassCostModel> {
  const prefix = model.tokenize("The bot reads every message in the channel. ".repeat(30), false);
  await sequence.clearHistory();
  await sequence.evaluateWithoutGeneratingNewTokens(prefix);
  const filler = model.tokenize(BENCH_MESSAGES.join(" "), false);
  const samples: Array<{ tokens: number; medianMs: number }> = [];
  for (const size of PASS_SIZES) {
    const input = filler.slice(0, size) as Token[];
    const times: number[] = [];
    for (let repeat = 0; repeat < PASS_REPEATS; repeat++) {
      const started = performance.now();
      // One pass: the tokens, with the logits of the last one read (as a classification does).
      await sequence.controlledEvaluate(
        input.map((token, index) =>
          index === input.length - 1
            ? [token, { generateNext: { logits: { filter: { tokens: [token] } } } }]
            : token,
        ),
      );
      times.push(performance.now() - started);
      await sequence.eraseContextTokenRanges([{ start: prefix.length, end: sequence.nextTokenIndex }]);
    }
    samples.push({ tokens: size, medianMs: median(times) });
  }
  const { intercept, slope, r2 } = fitLine(samples.map((sample) => [sample.tokens, sample.medianMs]));
  return {
    fixedMs: round(intercept),
    perTokenMs: round(slope, 2),
    samples: samples.map(roundSample),
    r2: round(r2, 3),
  };
}

function roundSample(sample: { tokens: number; medianMs: number }) {
  return { tokens: sample.tokens, medianMs: round(sample.medianMs) };
}

/** Ordinary least squares of y on x. */
function fitLine(points: ReadonlyArray<readonly [number, number]>): {
  intercept: number;
  slope: number;
  r2: number;
} {
  const n = points.length;
  const meanX = points.reduce((sum, [x]) => sum + x, 0) / n;
  const meanY = points.reduce((sum, [, y]) => sum + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (const [x, y] of points) {
    sxy += (x - meanX) * (y - meanY);
    sxx += (x - meanX) ** 2;
    syy += (y - meanY) ** 2;
  }
  const slope = sxx === 0 ? 0 : sxy / sxx;
  const intercept = meanY - slope * meanX;
  const residual = points.reduce((sum, [x, y]) => sum + (y - intercept - slope * x) ** 2, 0);
  return { intercept, slope, r2: syy === 0 ? 1 : 1 - residual / syy };
}

export function passTime(cost: PassCostModel, tokens: number): number {
  return cost.fixedMs + cost.perTokenMs * tokens;
}

/**
 * The least time the pass-cost model allows for a burst of `messages` classifications of `tokensPerMessage`
 * tokens, `width` per pass, while a reply keeps `floor` of its speed alone and a cold prompt of `promptTokens`
 * is evaluated first (in passes of `batchSize`). Wide passes carry one reply step each; chat-only passes are
 * added only as far as the floor needs them.
 */
export function burstCeilingMs(
  cost: PassCostModel,
  burst: {
    messages: number;
    tokensPerMessage: number;
    width: number;
    floor: number;
    promptTokens: number;
    batchSize: number;
  },
): number {
  const step = passTime(cost, 1);
  const widePasses = Math.ceil(burst.messages / burst.width);
  const widePass = passTime(cost, 1 + burst.width * burst.tokensPerMessage);
  // Chat tokens ≥ floor × time / step, solved for the chat-only passes that rule needs.
  const chatOnly = Math.max(
    0,
    Math.ceil((widePasses * (burst.floor * (widePass / step) - 1)) / (1 - burst.floor)),
  );
  const prompt =
    Math.ceil(burst.promptTokens / burst.batchSize) * cost.fixedMs + cost.perTokenMs * burst.promptTokens;
  return prompt + widePasses * widePass + chatOnly * step;
}

/**
 * The same ceiling under the rule the runtime actually follows (measured by `sharingByLength`): a pass pays its
 * fixed cost once per distinct input length, so only inputs of one length share it, at most `width` to a pass, and
 * a reply's one-token step never shares it. The classifications then cost W = fixed × Σ over lengths of
 * ⌈count ÷ width⌉ + per token × all their tokens, and keeping the reply at `floor` of its speed alone leaves them
 * (1 − floor) of the time: the burst takes at least W ÷ (1 − floor), after the prompt.
 */
export function burstCeilingByLengthMs(
  cost: PassCostModel,
  burst: {
    lengths: readonly number[];
    width: number;
    floor: number;
    promptTokens: number;
    batchSize: number;
  },
): number {
  const counts = new Map<number, number>();
  for (const length of burst.lengths) counts.set(length, (counts.get(length) ?? 0) + 1);
  let passes = 0;
  for (const count of counts.values()) passes += Math.ceil(count / burst.width);
  const tokens = burst.lengths.reduce((sum, length) => sum + length, 0);
  const work = cost.fixedMs * passes + cost.perTokenMs * tokens;
  const prompt =
    Math.ceil(burst.promptTokens / burst.batchSize) * cost.fixedMs + cost.perTokenMs * burst.promptTokens;
  return prompt + work / (1 - burst.floor);
}

// ---------------------------------------------------------------------------------------------------------------

const prompts = loadPrompts();

function mentionTurns(name: string): ChatTurn[] {
  return renderChatTurns(prompts, {
    botName: "moodbot",
    history: [],
    authorName: name,
    message: "what's happening in here? tell me everything",
  });
}

export interface ReplyTimeline {
  /** From the request to the first text. */
  readonly firstTokenMs: number;
  /** When each token came, from the request. */
  readonly tokenTimes: readonly number[];
  readonly generatedTokens: number;
  readonly promptTokens: number;
}

/** Tokens per second between two moments of a reply's timeline. */
export function tokenRate(timeline: ReplyTimeline, fromMs: number, toMs: number): number {
  const inside = timeline.tokenTimes.filter((time) => time > fromMs && time <= toMs).length;
  return toMs > fromMs ? (inside / (toMs - fromMs)) * 1000 : Number.NaN;
}

async function reply(llm: Llm, channelKey: string, maxTokens: number, startedAt: number) {
  const tokenTimes: number[] = [];
  const completion = await llm.generateChat(mentionTurns(channelKey), {
    channelKey,
    maxTokens,
    temperature: 0.7,
    // With the long-reply model every token is " lorem": one callback per token.
    onText: () => tokenTimes.push(performance.now() - startedAt),
  });
  return {
    firstTokenMs: tokenTimes[0] ?? Number.NaN,
    tokenTimes,
    generatedTokens: completion.generatedTokens,
    promptTokens: completion.evaluatedPromptTokens,
  } satisfies ReplyTimeline;
}

/** The reply alone: its first token and its token rate with nothing else on the model. */
export async function replyAlone(llm: Llm, maxTokens: number) {
  const timeline = await reply(llm, "alone", maxTokens, performance.now());
  const last = timeline.tokenTimes.at(-1) ?? Number.NaN;
  return { timeline, tokensPerSecond: tokenRate(timeline, timeline.firstTokenMs, last) };
}

/**
 * The burst of the issue: 40 messages over 4 servers' channels at once, then a mention whose reply runs to
 * maxTokens. Reactions are the bot's sentiment path, its result cache off so repeats cost a pass as well; times are
 * from the first message.
 */
export async function burstWithLongReply(llm: Llm, maxTokens: number, texts: readonly string[]) {
  const started = performance.now();
  const reacted: number[] = [];
  const reactions = texts.map((text, index) =>
    llm
      .classifySentiment(text, { group: `guild-${index % 4}` })
      .then(() => reacted.push(performance.now() - started)),
  );
  const mentionAt = performance.now() - started;
  const mention = reply(llm, "burst", maxTokens, started);
  const outcomes = await Promise.allSettled(reactions);
  const timeline = await mention;
  const lastReaction = Math.max(...reacted);
  const last = timeline.tokenTimes.at(-1) ?? Number.NaN;
  return {
    messages: texts.length,
    reactedWithin60s: reacted.filter((time) => time <= 60_000).length,
    dropped: outcomes.filter((outcome) => outcome.status === "rejected").length,
    wallMs: lastReaction,
    mentionFirstTokenMs: timeline.firstTokenMs - mentionAt,
    tokensPerSecondDuring: tokenRate(timeline, timeline.firstTokenMs, lastReaction),
    tokensPerSecondAfter: tokenRate(timeline, lastReaction, last),
    tokensDuring: timeline.tokenTimes.filter((time) => time <= lastReaction).length,
    generatedTokens: timeline.generatedTokens,
    promptTokens: timeline.promptTokens,
  };
}

/** Mentions in `channels` channels at once: when each one's first token came. */
export async function mentionsAtOnce(llm: Llm, channels: number, maxTokens: number) {
  const started = performance.now();
  const timelines = await Promise.all(
    Array.from({ length: channels }, (_, i) => reply(llm, `channel-${i}`, maxTokens, started)),
  );
  return timelines.map((timeline) => round(timeline.firstTokenMs, 0)).sort((a, b) => a - b);
}

/**
 * Four classifications on four sequences issued together against the same four one after another, once with
 * equal input lengths and once with unequal ones. node-llama-cpp creates llama.cpp contexts with one KV stream
 * per sequence (its addon sets kv_unified to false), and llama.cpp then splits a batch into sub-batches of equal
 * length per sequence, each paying a pass's fixed cost: so passes share their fixed cost only between inputs of
 * the same length.
 */
export async function sharingByLength(model: LlamaModel, sequences: readonly LlamaContextSequence[]) {
  const prefix = model.tokenize("The bot reads every message in the channel. ".repeat(30), false);
  for (const sequence of sequences) {
    await sequence.clearHistory();
    await sequence.evaluateWithoutGeneratingNewTokens(prefix);
  }
  const filler = model.tokenize(BENCH_MESSAGES.join(" "), false);
  const classify = async (sequence: LlamaContextSequence, length: number) => {
    const input = filler.slice(0, length) as Token[];
    await sequence.controlledEvaluate(
      input.map((token, index) =>
        index === length - 1 ? [token, { generateNext: { logits: { filter: { tokens: [token] } } } }] : token,
      ),
    );
    await sequence.eraseContextTokenRanges([{ start: prefix.length, end: sequence.nextTokenIndex }]);
  };
  const measure = async (lengths: readonly number[]) => {
    const together: number[] = [];
    const oneByOne: number[] = [];
    for (let repeat = 0; repeat < PASS_REPEATS; repeat++) {
      let started = performance.now();
      await Promise.all(sequences.map((sequence, i) => classify(sequence, lengths[i] ?? 1)));
      together.push(performance.now() - started);
      started = performance.now();
      for (const [i, sequence] of sequences.entries()) await classify(sequence, lengths[i] ?? 1);
      oneByOne.push(performance.now() - started);
    }
    return { lengths, togetherMs: round(median(together)), oneByOneMs: round(median(oneByOne)) };
  };
  return { equal: await measure([13, 13, 13, 13]), unequal: await measure([4, 8, 13, 20]) };
}
