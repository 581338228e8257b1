import { describe, expect, it } from "vitest";
import {
  type ChatCompletion,
  type Llm,
  type ModelRuntimeInfo,
  NO_CACHE_STATS,
  type PromptReload,
  type SentimentResult,
  type TaskOutcome,
} from "../../src/llm/llm.js";
import { ResultCachedLlm } from "../../src/llm/resultCachedLlm.js";
import type { CachedLabels, SharedResultStore } from "../../src/llm/sharedResultCache.js";
import { createLogger } from "../../src/platform/logger.js";
import { loadPrompts } from "../../src/prompts/prompts.js";

const logger = createLogger({ level: "silent" });

/**
 * A model below the cache layer: it counts what it classifies, and its result identity changes when a test says
 * (a reload, a server that came back with another model). `hold` keeps the next classification waiting.
 */
class CountingModel implements Llm {
  classified: string[] = [];
  identity: readonly (string | number)[] = ["llama.cpp", "logits", "model-a", 1, 2, 3];
  /** Lets a held classification go on. */
  release: () => void = () => undefined;
  private holding: Promise<void> | undefined;
  readonly modelName = "model-a";
  readonly backend = "server";
  readonly contextSize = 2048;
  readonly runtime: ModelRuntimeInfo = { kind: "llama.cpp", method: "logits", model: "model-a" };
  readonly readiness = { ready: true } as const;
  readonly schedulerStats = {
    completed: 0,
    failed: 0,
    shedFull: 0,
    shedStale: 0,
    cancelled: 0,
    passes: 0,
    sharedPasses: 0,
  };
  readonly queueDepth = { interactive: 0, background: 0, chat: 0 };
  readonly inFlight = 0;
  readonly cacheStats = NO_CACHE_STATS;

  get resultIdentity() {
    return this.identity;
  }

  /** Holds the next classification once it reached the model; resolves then. */
  hold(): Promise<void> {
    return new Promise((started) => {
      this.holding = new Promise<void>((resume) => {
        this.release = resume;
        this.onStart = started;
      });
    });
  }
  private onStart: () => void = () => undefined;

  async classifySentiment(text: string): Promise<SentimentResult> {
    this.classified.push(text);
    const holding = this.holding;
    this.holding = undefined;
    if (holding) {
      this.onStart();
      await holding;
    }
    return {
      label: "positive",
      confidence: 0.7,
      probabilities: { positive: 0.7, negative: 0.2, neutral: 0.1 },
      method: "logits",
      evaluatedTokens: 3,
      truncated: false,
    };
  }
  generateChat(): Promise<ChatCompletion> {
    throw new Error("not used");
  }
  runTask(): Promise<TaskOutcome> {
    throw new Error("not used");
  }
  async reload(): Promise<PromptReload> {
    return { sentimentPrefixTokens: 3, withoutSequence: [] };
  }
  async countTokens(text: string): Promise<number> {
    return text.length;
  }
  async truncateToTokens(text: string, maxTokens: number): Promise<string> {
    return text.slice(0, maxTokens);
  }
  interrupt(): void {}
  async close(): Promise<void> {}
}

/** A shared store in memory, keeping every key it was asked to write. */
class MemoryStore implements SharedResultStore {
  readonly entries = new Map<string, CachedLabels>();
  async get(key: string) {
    return this.entries.get(key);
  }
  async set(key: string, value: CachedLabels) {
    this.entries.set(key, value);
  }
}

describe("the result caches over any model", () => {
  it("answer a repeated text without the model, marked cached", async () => {
    const model = new CountingModel();
    const llm = new ResultCachedLlm(model, { logger, cacheSize: 10 });
    await llm.classifySentiment("gg");
    const again = await llm.classifySentiment(" GG ");
    expect(again).toMatchObject({ cached: true, evaluatedTokens: 0, label: "positive" });
    expect(model.classified).toEqual(["gg"]);
    expect(llm.cacheStats).toMatchObject({ hits: 1, misses: 1, size: 1 });
  });

  it("start afresh when the model's identity changes, carrying the counts, under a new shared key", async () => {
    const model = new CountingModel();
    const shared = new MemoryStore();
    const llm = new ResultCachedLlm(model, {
      logger,
      cacheSize: 10,
      shared: { store: shared, budgetMs: 1_000 },
    });
    await llm.classifySentiment("gg");
    await llm.classifySentiment("gg");
    model.identity = ["llama.cpp", "logits", "model-b", 1, 2, 3];
    const afterChange = await llm.classifySentiment("gg");
    expect(afterChange.cached).toBeUndefined();
    expect(model.classified).toEqual(["gg", "gg"]);
    expect(llm.cacheStats).toMatchObject({ hits: 1, misses: 2, size: 1 });
    // Each identity has its own key in the shared store: model-b never read model-a's result.
    expect(shared.entries.size).toBe(2);
  });

  it("keep no result read while the identity changed: nothing says which model read it", async () => {
    const model = new CountingModel();
    const llm = new ResultCachedLlm(model, { logger, cacheSize: 10 });
    const started = model.hold();
    const pending = llm.classifySentiment("gg");
    await started;
    model.identity = ["llama.cpp", "logits", "model-b", 1, 2, 3];
    model.release();
    await pending;
    await llm.classifySentiment("gg");
    expect(model.classified).toEqual(["gg", "gg"]);
  });

  it("start afresh on a reload, carrying the counts", async () => {
    const model = new CountingModel();
    const llm = new ResultCachedLlm(model, { logger, cacheSize: 10 });
    await llm.classifySentiment("gg");
    await llm.classifySentiment("gg");
    await llm.reload(loadPrompts(), []);
    expect(llm.cacheStats).toMatchObject({ hits: 1, misses: 1, size: 0 });
    expect((await llm.classifySentiment("gg")).cached).toBeUndefined();
  });
});
