import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel } from "../../src/llm/inProcess/model.js";
import type { Llm } from "../../src/llm/llm.js";
import { ResultCachedLlm } from "../../src/llm/resultCachedLlm.js";
import { SentimentCache } from "../../src/llm/sentimentCache.js";
import {
  type CachedLabels,
  LayeredSentimentCache,
  type SharedResultStore,
} from "../../src/llm/sharedResultCache.js";
import { createLogger } from "../../src/platform/logger.js";
import { openStore, type Store } from "../../src/store/openStore.js";
import { createRedisClient, type RedisClient } from "../../src/store/redisClient.js";
import { RedisResultCache } from "../../src/store/redisResultCache.js";
import { LogCapture } from "../../testkit/harness.js";
import { testModelOptions, tinyModel } from "../../testkit/models.js";
import { RedisServer, sharedRedis } from "../../testkit/redis.js";
import { waitUntil } from "../../testkit/waitUntil.js";

const logger = createLogger({ level: "silent" });
const NEVER: Promise<never> = new Promise(() => undefined);

/** The shared store as the model uses it, keeping each write's own promise: a test waits on its own write. */
class NotedWrites implements SharedResultStore {
  readonly writes: Array<Promise<void>> = [];
  constructor(private readonly inner: SharedResultStore) {}
  get(key: string) {
    return this.inner.get(key);
  }
  set(key: string, value: CachedLabels) {
    const write = this.inner.set(key, value);
    this.writes.push(write);
    return write;
  }
}

/** One process's view: its own store connection and its own model, sharing the result cache through Redis. */
async function processOn(
  url: string,
  modelPath: string,
): Promise<{ llm: Llm; store: Store; shared: NotedWrites | undefined }> {
  const store = await openStore(url, logger, { resultCache: { slots: 1000, ttlSeconds: 600 } });
  const shared = store.resultCache ? new NotedWrites(store.resultCache) : undefined;
  const model = await loadModel(testModelOptions({ path: modelPath }));
  const llm = new ResultCachedLlm(model, {
    logger,
    cacheSize: 100,
    ...(shared ? { shared: { store: shared, budgetMs: 20 } } : {}),
  });
  return { llm, store, shared };
}

describe("the result cache every process shares", () => {
  let redis: { url: string; release: () => Promise<void> };
  let client: RedisClient;
  beforeAll(async () => {
    redis = await sharedRedis();
    client = createRedisClient(redis.url);
    await client.connect();
  });
  afterAll(async () => {
    await client.quit();
    await redis.release();
  });

  it("answers a text one process classified in another, without model work, storing no text", async () => {
    const modelPath = await tinyModel();
    const a = await processOn(redis.url, modelPath);
    const b = await processOn(redis.url, modelPath);
    try {
      const text = `gg everyone, that was fun ${Date.now()}`;
      const first = await a.llm.classifySentiment(text);
      expect(first.cached).toBeUndefined();
      // The classification does not wait for the shared write: wait for that write's own completion, whatever
      // other suites write to the same Redis meanwhile.
      await waitUntil(() => (a.shared?.writes.length ?? 0) > 0, { timeoutMs: 5_000 });
      expect(a.shared?.writes).toHaveLength(1);
      await a.shared?.writes[0];
      const second = await b.llm.classifySentiment(text);
      expect(second).toMatchObject({ cached: true, label: first.label, evaluatedTokens: 0 });
      expect(second.probabilities).toEqual(first.probabilities);
      expect(b.llm.cacheStats.shared.hits).toBe(1);
      expect(b.llm.schedulerStats.completed).toBe(0);
      for (const key of await client.keys("moodbot:sentiment-cache:*")) {
        expect(await client.get(key)).not.toContain("gg everyone");
        expect(await client.ttl(key)).toBeGreaterThan(0);
      }
    } finally {
      await a.llm.close();
      await b.llm.close();
      await a.store.close();
      await b.store.close();
    }
  });

  it("never holds more keys than its slots, and a slot taken by another text is a miss", async () => {
    const prefix = `moodbot-test-${Date.now()}:`;
    const cache = new RedisResultCache(client, { prefix, slots: 4, ttlSeconds: 60 });
    const labels: CachedLabels = {
      label: "positive",
      probabilities: { positive: 0.8, negative: 0.1, neutral: 0.1 },
    };
    // Hex digests whose leading digits differ, as real ones do: key i falls in slot i % 4.
    const keys = Array.from({ length: 50 }, (_, i) => i.toString(16).padStart(12, "0").padEnd(64, "0"));
    for (const key of keys) await cache.set(key, labels);
    expect(await client.keys(`${prefix}*`)).toHaveLength(4);
    // Keys 44 and 48 share slot 0; the later one holds it.
    expect(await cache.get(keys[48] ?? "")).toEqual(labels);
    expect(await cache.get(keys[44] ?? "")).toBeUndefined();
  });

  it("gives up on a lookup slower than its budget, and the model answers", async () => {
    const logs = new LogCapture();
    const slow: SharedResultStore = { get: () => NEVER, set: async () => undefined };
    const cache = new LayeredSentimentCache({
      local: new SentimentCache(10),
      shared: slow,
      namespace: "test",
      budgetMs: 20,
      method: "logits",
      logger: createLogger({ level: "debug", destination: logs.stream }),
    });
    expect(await cache.lookup("hello there")).toBeUndefined();
    expect(cache.shared).toMatchObject({ timeouts: 1, hits: 0 });
    expect(logs.find("shared result cache too slow")).toHaveLength(1);
  });

  it("classifies with the model while Redis is down", async () => {
    const server = await RedisServer.start();
    const modelPath = await tinyModel();
    const down = await processOn(server.url, modelPath);
    try {
      await server.stop();
      const result = await down.llm.classifySentiment("is anyone here?");
      expect(result.cached).toBeUndefined();
      expect(down.llm.schedulerStats.completed).toBe(1);
      expect(down.llm.cacheStats.shared.errors + down.llm.cacheStats.shared.timeouts).toBe(1);
    } finally {
      await down.llm.close();
      await down.store.close();
    }
  });
});
