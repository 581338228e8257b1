import { BUILT_IN_COMMAND_NAMES, commandsWithTasks } from "../commands/index.js";
import type { Config } from "./config.js";
import type { Command } from "./discord/context.js";
import type { Llm } from "./llm/llm.js";
import { loadModel } from "./llm/model.js";
import type { Logger } from "./logger.js";
import { Pipeline } from "./pipeline.js";
import { loadPrompts, type Prompts } from "./prompts.js";
import { HistoryStore } from "./store/history.js";
import type { MoodTally } from "./store/moodTally.js";
import { openStore, type Store } from "./store/openStore.js";
import { SettingsStore } from "./store/settings.js";
import { loadTasks, type Task } from "./tasks.js";

/** The parts every entry point runs on, built once from the config. */
export interface App {
  readonly llm: Llm;
  readonly store: Store;
  readonly prompts: Prompts;
  readonly tasks: readonly Task[];
  /** The bot's jobs (mood, conversation, tasks) over the model and the channel histories. */
  readonly pipeline: Pipeline;
  /** Per-guild and per-channel settings from /settings. */
  readonly settings: SettingsStore;
  /** Per-channel mood counts for /mood. */
  readonly moods: MoodTally;
  /** Every application command: the built-in ones and one per task. */
  readonly commands: readonly Command[];
  /** Stops the model (ending its generations), then closes the store. */
  close(): Promise<void>;
}

export interface AssembleOptions {
  /** Serve the prompt-defined tasks in TASKS_DIR (on by default). */
  readonly withTasks?: boolean;
  /** Told how a model download is going, besides the log. */
  readonly onDownloadProgress?: (percent: number) => void;
}

/**
 * Builds the app from its config without connecting to Discord. The store opens first: it is quick to fail, and
 * on Redis it carries the result cache that the model shares with the other processes.
 */
export async function assemble(config: Config, logger: Logger, options: AssembleOptions = {}): Promise<App> {
  const prompts = loadPrompts();
  const tasks = options.withTasks === false ? [] : loadTasks(config.tasksDir, BUILT_IN_COMMAND_NAMES);
  const store = await openStore(config.storeUrl, logger, {
    resultCache: {
      slots: config.sentiment.sharedCache.size,
      ttlSeconds: config.sentiment.sharedCache.ttlSeconds,
    },
  });
  try {
    const llm = await loadModel(modelOptions(config, store, prompts, tasks, logger, options));
    const history = new HistoryStore(
      store.turns,
      { maxTurns: config.chat.historyTurns },
      logger.child({ component: "history" }),
    );
    return {
      llm,
      store,
      prompts,
      tasks,
      pipeline: new Pipeline({ llm, history, prompts, config, logger }),
      settings: new SettingsStore(store.keyv, logger.child({ component: "settings" })),
      moods: store.moods,
      commands: commandsWithTasks(tasks),
      async close() {
        await llm.close();
        await history.close();
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

function modelOptions(
  config: Config,
  store: Store,
  prompts: Prompts,
  tasks: readonly Task[],
  logger: Logger,
  options: AssembleOptions,
): Parameters<typeof loadModel>[0] {
  const { sharedCache } = config.sentiment;
  return {
    ...config.model,
    chatSpeedFloor: config.chat.speedFloor,
    sentiment: config.sentiment,
    ...(store.resultCache
      ? { sharedCache: { store: store.resultCache, budgetMs: sharedCache.budgetMs } }
      : {}),
    prompts,
    tasks,
    logger,
    ...(options.onDownloadProgress ? { onDownloadProgress: options.onDownloadProgress } : {}),
  };
}
