import type { Config } from "./config.js";
import type { Llm } from "./llm/llm.js";
import { loadModel } from "./llm/model.js";
import type { Logger } from "./logger.js";
import { loadPrompts, type Prompts } from "./prompts.js";
import { openStore, type Store } from "./store/openStore.js";
import { loadTasks, type Task } from "./tasks.js";

/** The parts every entry point runs on: the model, the store, and the prompts and tasks they were built from. */
export interface App {
  readonly llm: Llm;
  readonly store: Store;
  readonly prompts: Prompts;
  readonly tasks: readonly Task[];
  /** Stops the model (ending its generations), then closes the store. */
  close(): Promise<void>;
}

export interface AssembleOptions {
  /** Serve the prompt-defined tasks in TASKS_DIR (on by default). */
  readonly withTasks?: boolean;
  /** Show node-llama-cpp's download progress bar. */
  readonly showDownloadProgress?: boolean;
}

/**
 * Builds the app from its config without connecting to Discord. The store opens first: it is quick to fail, and
 * on Redis it carries the result cache that the model shares with the other processes.
 */
export async function assemble(config: Config, logger: Logger, options: AssembleOptions = {}): Promise<App> {
  const prompts = loadPrompts();
  const tasks = options.withTasks === false ? [] : loadTasks(config.tasksDir);
  const { sharedCache } = config.sentiment;
  const store = await openStore(config.storeUrl, logger, {
    resultCache: { slots: sharedCache.size, ttlSeconds: sharedCache.ttlSeconds },
  });
  try {
    const llm = await loadModel({
      ...config.model,
      chatSpeedFloor: config.chat.speedFloor,
      sentiment: config.sentiment,
      ...(store.resultCache
        ? { sharedCache: { store: store.resultCache, budgetMs: sharedCache.budgetMs } }
        : {}),
      prompts,
      tasks,
      logger,
      showDownloadProgress: options.showDownloadProgress ?? false,
    });
    return {
      llm,
      store,
      prompts,
      tasks,
      async close() {
        await llm.close();
        await store.close();
      },
    };
  } catch (error) {
    await store.close().catch((closeError: unknown) => {
      logger.debug({ err: closeError }, "closing the store after a failed model load also failed");
    });
    throw error;
  }
}
