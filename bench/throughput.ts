import type { Llm } from "../src/llm/llm.js";
import { SentimentCache } from "../src/llm/sentimentCache.js";
import { round, timed } from "./stats.js";

/**
 * Messages per second through the sentiment path at full load: every message is waiting from the start, so the
 * figure is capacity, not latency. The bot batched is the production path (the scheduler filling passes from its
 * sentiment sequences); the other three run one message at a time.
 */

export interface Throughput {
  readonly messages: number;
  readonly ms: number;
  readonly perSecond: number;
}

function throughput(messages: number, ms: number): Throughput {
  return { messages, ms: round(ms, 0), perSecond: round((messages / ms) * 1000, 2) };
}

/** The bot as it runs: every message submitted at once to the scheduler, which batches them. */
export async function botBatched(llm: Llm, texts: readonly string[]): Promise<Throughput> {
  const [, ms] = await timed(() =>
    Promise.all(texts.map((text, i) => llm.classifySentiment(text, { group: `g${i % 4}` }))),
  );
  return throughput(texts.length, ms);
}

/**
 * The burst `rounds` times over, and the median round by its rate: the machine may be shared, and one round that
 * another process slowed should not decide a comparison.
 */
export async function botBatchedMedian(llm: Llm, texts: readonly string[], rounds = 3): Promise<Throughput> {
  const runs: Throughput[] = [];
  for (let round = 0; round < rounds; round++) runs.push(await botBatched(llm, texts));
  runs.sort((a, b) => a.perSecond - b.perSecond);
  return runs[Math.floor(runs.length / 2)] ?? throughput(texts.length, Number.NaN);
}

/** Any method, one message at a time: the bot's one-pass method on one sequence, or the article's. */
export async function oneAtATime(
  classify: (text: string) => Promise<unknown>,
  texts: readonly string[],
): Promise<Throughput> {
  const [, ms] = await timed(async () => {
    for (const text of texts) await classify(text);
  });
  return throughput(texts.length, ms);
}

/**
 * The realistic stream through the bot, in arrival order, `width` messages in flight (the sentiment sequences), with
 * the process's result cache in front of the model or not: a repeat that arrives while its first copy is still in
 * flight misses, as it would in the bot.
 */
export async function streamThroughBot(
  llm: Llm,
  stream: readonly string[],
  options: { cacheSize: number; width: number },
): Promise<Throughput & { hitRate: number }> {
  // The Llm here runs with its cache off; this cache stands where the production one does, in front.
  const cache = new SentimentCache(options.cacheSize);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < stream.length; i = next++) {
      const text = stream[i] ?? "";
      if (cache.get(text)) continue;
      cache.set(text, await llm.classifySentiment(text, { group: `g${i % 4}` }));
    }
  };
  const [, ms] = await timed(() => Promise.all(Array.from({ length: options.width }, worker)));
  return { ...throughput(stream.length, ms), hitRate: round(cache.hits / stream.length, 3) };
}
