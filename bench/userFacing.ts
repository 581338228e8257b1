import type { Llm, SentimentResult } from "../src/llm/llm.js";
import { type ChatTurn, loadPrompts, renderChatTurns } from "../src/prompts/prompts.js";
import { BENCH_MESSAGES, tenTurnHistory } from "./messages.js";
import { burstWithLongReply, replyAlone } from "./passes.js";
import { mean, percentile, round, timed } from "./stats.js";
import { botBatchedMedian, type Throughput } from "./throughput.js";

/*
 * What users feel, measured through `Llm` alone, so that the same code measures either runtime: one message at a
 * time, the burst without a reply, the burst with a long reply running, and the first token of a conversation.
 * The in-process runtime's defaults reuse the figures the rest of the bench already takes on its own model objects
 * (bench/run.ts); every other side runs these on the Llm that openModel returned.
 */

const prompts = loadPrompts();

export interface OneMessage {
  readonly p50Ms: number;
  readonly p95Ms: number;
  /** Each bench message's label probabilities, in BENCH_MESSAGES' order: the runtimes are compared on them. */
  readonly probabilities: ReadonlyArray<SentimentResult["probabilities"]>;
}

/** Every bench message classified alone, after three to warm up. */
export async function oneMessage(llm: Llm): Promise<OneMessage> {
  for (const text of BENCH_MESSAGES.slice(0, 3)) await llm.classifySentiment(text, { group: "warm-up" });
  const times: number[] = [];
  const probabilities: Array<SentimentResult["probabilities"]> = [];
  for (const text of BENCH_MESSAGES) {
    const [result, ms] = await timed(() => llm.classifySentiment(text, { group: "alone" }));
    times.push(ms);
    probabilities.push(result.probabilities);
  }
  return { p50Ms: round(percentile(times, 50)), p95Ms: round(percentile(times, 95)), probabilities };
}

/** The largest difference between two runs' probabilities of any label of any message. */
export function maxProbabilityDifference(a: OneMessage, b: OneMessage): number {
  let largest = 0;
  for (const [i, left] of a.probabilities.entries()) {
    const right = b.probabilities[i];
    if (!right) return Number.NaN;
    for (const label of Object.keys(left) as Array<keyof typeof left>) {
      largest = Math.max(largest, Math.abs(left[label] - right[label]));
    }
  }
  return largest;
}

export interface Conversation {
  readonly coldFirstTokenMs: number;
  readonly warmFirstTokenMs: number;
  readonly coldPromptTokens: number;
  readonly warmPromptTokens: number;
}

/** What a reply reports that the first-token rounds read. */
interface RoundReply {
  readonly text: string;
  readonly evaluatedPromptTokens: number;
}

/**
 * Three rounds of a 10-turn conversation: its first mention (cold), then the next one (warm), each timed to its first
 * token; medians of the times, means of the prompt tokens evaluated. `generate` writes one reply on the runtime
 * measured, `history` is the round's history, and `beforeRound` clears what the round before left, where the runtime
 * keeps it.
 */
export async function firstTokenRounds(run: {
  readonly generate: (round: number, turns: ChatTurn[], onText: () => void) => Promise<RoundReply>;
  readonly history: (round: number) => ChatTurn[];
  readonly beforeRound?: () => Promise<void>;
}): Promise<Conversation> {
  const firstToken = async (round: number, turns: ChatTurn[]) => {
    const started = performance.now();
    let first = Number.NaN;
    const completion = await run.generate(round, turns, () => {
      if (Number.isNaN(first)) first = performance.now() - started;
    });
    return { ms: first, completion };
  };
  const cold: number[] = [];
  const warm: number[] = [];
  const coldTokens: number[] = [];
  const warmTokens: number[] = [];
  for (let round = 0; round < 3; round++) {
    await run.beforeRound?.();
    const history = run.history(round);
    const message = `so who is casting, round ${round}?`;
    const first = await firstToken(
      round,
      renderChatTurns(prompts, { botName: "moodbot", history, authorName: "dave", message }),
    );
    cold.push(first.ms);
    coldTokens.push(first.completion.evaluatedPromptTokens);
    history.push(
      { role: "user", text: `dave: ${message}` },
      { role: "assistant", text: first.completion.text },
    );
    const next = await firstToken(
      round,
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
    coldFirstTokenMs: round(percentile(cold, 50)),
    warmFirstTokenMs: round(percentile(warm, 50)),
    coldPromptTokens: Math.round(mean(coldTokens)),
    warmPromptTokens: Math.round(mean(warmTokens)),
  };
}

/**
 * A channel with a 10-turn history: its first mention (cold: the channel is new to the model, only the system
 * prompt may be cached), then the next one in the same channel (warm: the conversation's prefix is still held), in
 * a channel of its own each round; `label` keeps the channels of one run apart from another's.
 */
export function conversationFirstToken(llm: Llm, label: string): Promise<Conversation> {
  return firstTokenRounds({
    generate: (round, turns, onText) =>
      llm.generateChat(turns, {
        channelKey: `${label}-conversation-${round}`,
        maxTokens: 8,
        temperature: 0,
        onText,
      }),
    // Each round's channel has a history of its own: only the system prompt is shared, as between real channels.
    history: (round) =>
      tenTurnHistory().map((turn, i) =>
        i === 0 ? { ...turn, text: `${turn.text} (${label}, channel ${round})` } : turn,
      ),
  });
}

/** The burst with a long reply running, against the same reply alone. */
export interface WithReply {
  readonly reactedWithin60s: number;
  readonly dropped: number;
  readonly wallMs: number;
  readonly mentionFirstTokenMs: number;
  readonly aloneFirstTokenMs: number;
  readonly firstTokenOverAlone: number;
  readonly aloneTokensPerSecond: number;
  readonly tokensPerSecondDuring: number;
  readonly generatedTokens: number;
}

export function withReplyFigures(
  alone: Awaited<ReturnType<typeof replyAlone>>,
  burst: Awaited<ReturnType<typeof burstWithLongReply>>,
): WithReply {
  return {
    reactedWithin60s: burst.reactedWithin60s,
    dropped: burst.dropped,
    wallMs: round(burst.wallMs, 0),
    mentionFirstTokenMs: round(burst.mentionFirstTokenMs, 0),
    aloneFirstTokenMs: round(alone.timeline.firstTokenMs, 0),
    firstTokenOverAlone: round(burst.mentionFirstTokenMs / alone.timeline.firstTokenMs, 2),
    aloneTokensPerSecond: round(alone.tokensPerSecond, 2),
    tokensPerSecondDuring: round(burst.tokensPerSecondDuring, 2),
    generatedTokens: burst.generatedTokens,
  };
}

/** One runtime at one setting, as users feel it. */
export interface RuntimeSide {
  readonly oneMessage: Omit<OneMessage, "probabilities">;
  /** The burst without a reply: every message waiting from the start, so messages a second at full load. */
  readonly burst: Throughput;
  readonly withReply: WithReply;
  readonly conversation: Conversation;
}

/** On the plain model: one message at a time, then the burst without a reply (the median of three). */
export async function plainSide(llm: Llm, burstTexts: readonly string[]) {
  const single = await oneMessage(llm);
  const burst = await botBatchedMedian(llm, burstTexts);
  return { single, burst };
}

/** On the long-reply model: the reply alone, the burst with it running, then a conversation's first tokens. */
export async function replySide(llm: Llm, burstTexts: readonly string[], replyTokens: number, label: string) {
  const alone = await replyAlone(llm, replyTokens);
  const burst = await burstWithLongReply(llm, replyTokens, burstTexts);
  const conversation = await conversationFirstToken(llm, label);
  return { withReply: withReplyFigures(alone, burst), conversation };
}

/** The two halves as one side of the comparison. */
export function side(
  plain: { single: OneMessage; burst: Throughput },
  replies: { withReply: WithReply; conversation: Conversation },
): RuntimeSide {
  const { probabilities: _probabilities, ...single } = plain.single;
  return { oneMessage: single, burst: plain.burst, ...replies };
}
