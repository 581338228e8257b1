import type { SentimentResult } from "../src/llm/llm.js";
import { SentimentCache } from "../src/llm/sentimentCache.js";
import {
  type CachedLabels,
  LayeredSentimentCache,
  type SharedResultStore,
} from "../src/llm/sharedResultCache.js";
import { createLogger } from "../src/platform/logger.js";
import { createRedisClient } from "../src/store/redisClient.js";
import { RedisResultCache } from "../src/store/redisResultCache.js";
import { RedisServer } from "../testkit/redis.js";
import { round } from "./stats.js";

/** A shared store whose last write can be awaited: messages arrive over time, so each write lands before the next. */
class SettledWrites implements SharedResultStore {
  last: Promise<void> = Promise.resolve();
  constructor(private readonly inner: SharedResultStore) {}
  get(key: string): Promise<CachedLabels | undefined> {
    return this.inner.get(key);
  }
  set(key: string, value: CachedLabels): Promise<void> {
    this.last = this.inner.set(key, value);
    return this.last;
  }
}

const RESULT: SentimentResult = {
  label: "neutral",
  confidence: 1,
  probabilities: { positive: 0, negative: 0, neutral: 1 },
  method: "logits",
  evaluatedTokens: 0,
  truncated: false,
};

/**
 * The result cache's hit rate for two processes that each see every other message of the stream, sharing the
 * cache through a real redis-server or each keeping its own. What a hit returns does not matter here, so no model
 * runs: the figure is the caches' alone. Undefined when redis-server is not installed.
 */
export async function sharedCacheHitRate(
  stream: readonly string[],
): Promise<{ shared: number; separate: number } | undefined> {
  let server: RedisServer;
  try {
    server = await RedisServer.start();
  } catch {
    return undefined;
  }
  const logger = createLogger({ level: "silent" });
  const clients = [createRedisClient(server.url), createRedisClient(server.url)];
  try {
    await Promise.all(clients.map((client) => client.connect()));
    const run = async (share: boolean) => {
      const stores = clients.map(
        (client) =>
          new SettledWrites(
            new RedisResultCache(client, { prefix: `bench-${share}:`, slots: 100_000, ttlSeconds: 600 }),
          ),
      );
      const caches = stores.map(
        (store, i) =>
          new LayeredSentimentCache({
            local: new SentimentCache(1000),
            shared: share ? store : undefined,
            namespace: share ? "bench" : `bench-${i}`,
            budgetMs: 20,
            method: "logits",
            logger,
          }),
      );
      let hits = 0;
      for (const [index, text] of stream.entries()) {
        const cache = caches[index % 2];
        const store = stores[index % 2];
        if (!cache || !store) continue;
        if (await cache.lookup(text)) {
          hits++;
          continue;
        }
        cache.store(text, RESULT);
        await store.last;
      }
      return round(hits / stream.length, 3);
    };
    return { shared: await run(true), separate: await run(false) };
  } finally {
    await Promise.all(clients.map((client) => client.quit()));
    await server.stop();
  }
}
