import type { Llm } from "../llm/llm.js";
import { type OpenModelOptions, openModel } from "../llm/openModel.js";
import type { MetricSources, Metrics } from "../observability/metrics.js";
import { Outcomes } from "../outcomes/outcomes.js";
import { Pipeline } from "../pipeline/pipeline.js";
import type { Config } from "../platform/config.js";
import type { Logger } from "../platform/logger.js";
import { DAY_MS } from "../platform/time.js";
import { loadPrompts, type Prompts } from "../prompts/prompts.js";
import { HistoryStore } from "../store/history.js";
import { StoreMaintenance } from "../store/maintenance.js";
import { MemberData } from "../store/memberData.js";
import { ModerationStore } from "../store/moderation.js";
import type { MoodTally } from "../store/moodTally.js";
import { openStore, type Store } from "../store/openStore.js";
import { PrivacyStore } from "../store/privacy.js";
import { migrateStore } from "../store/schema.js";
import { SettingsStore } from "../store/settings.js";
import { BUILT_IN_COMMAND_NAMES } from "../tasks/builtInNames.js";
import { loadTasks, type Task } from "../tasks/tasks.js";

/** The parts every entry point runs on, built once from the config. */
export interface App {
  readonly llm: Llm;
  readonly store: Store;
  readonly prompts: Prompts;
  readonly tasks: readonly Task[];
  /** The bot's jobs (mood, conversation, tasks) over the model and the channel histories. */
  readonly pipeline: Pipeline;
  /** The channel histories, which hold turns in memory while the store is away. */
  readonly history: HistoryStore;
  /** Per-guild and per-channel settings from /settings. */
  readonly settings: SettingsStore;
  /** Per-channel mood counts for /mood. */
  readonly moods: MoodTally;
  /** Each member's opt-out, read for every message. */
  readonly privacy: PrivacyStore;
  /** Each server's moderation setup, read for every message. */
  readonly moderation: ModerationStore;
  /** A member's data to export or delete, a server's to purge, and per-member mood counts. */
  readonly memberData: MemberData;
  /** Removes expired turns and runs erasures that had to wait, on a timer of its own. */
  readonly maintenance: StoreMaintenance;
  /** What became of each message, reply and stored turn, for whoever subscribes (tests, a parent process). */
  readonly outcomes: Outcomes;
  /**
   * Reads PROMPTS_DIR and TASKS_DIR again and switches the model and the pipeline to them, between two passes.
   * A bad file throws (PromptFileError, TaskFileError) and changes nothing.
   */
  reload(): Promise<AppReload>;
  /** Stops the model (ending its generations), then closes the store. */
  close(): Promise<void>;
}

/** What a reload changed. */
export interface AppReload {
  /** The names of the tasks now served (App.tasks holds them). */
  readonly tasks: readonly string[];
  /** Label tasks that need a restart: the model was loaded with sequences for fewer. */
  readonly needRestart: readonly string[];
  readonly sentimentPrefixTokens: number;
}

export interface AssembleOptions {
  /** Serve the prompt-defined tasks in TASKS_DIR (on by default). */
  readonly withTasks?: boolean;
  /** Told how a model download is going, besides the log (in-process). */
  readonly onDownloadProgress?: (percent: number) => void;
  /** The process's metrics: told about every forward pass or server request, and given the model and the store. */
  readonly metrics?: Metrics;
  /** The outcome hook to tell; a new one, with no listener, when absent. */
  readonly outcomes?: Outcomes;
  /** Wraps the loaded model before anything uses it (a test's recorder); the model as loaded when absent. */
  readonly decorateLlm?: (llm: Llm) => Llm;
}

/**
 * Builds the app from its config without connecting to Discord. The store opens first: it is quick to fail, and
 * on Redis it carries the result cache that the model shares with the other processes.
 */
export async function assemble(config: Config, logger: Logger, options: AssembleOptions = {}): Promise<App> {
  for (const warning of config.warnings) logger.warn(warning);
  const readTasks = () =>
    options.withTasks === false ? [] : loadTasks(config.tasksDir, BUILT_IN_COMMAND_NAMES);
  let prompts = loadPrompts(config.promptsDir);
  let tasks = readTasks();
  const store = await openStore(config.storeUrl, logger, {
    resultCache: {
      slots: config.sentiment.sharedCache.size,
      ttlSeconds: config.sentiment.sharedCache.ttlSeconds,
    },
  });
  try {
    const storeLogger = logger.child({ component: "store" });
    const history = new HistoryStore(
      store,
      { maxTurns: config.chat.historyTurns, retentionMs: config.chat.historyTtlDays * DAY_MS },
      logger.child({ component: "history" }),
    );
    await migrateStore(store, config.storeUrl, history, storeLogger);
    const settings = new SettingsStore(store.keyv, logger.child({ component: "settings" }));
    // Shards share Redis: each reads the choice for every message, so an opt-out holds from the very next message
    // on every shard. A SQLite store has one owning process, whose cache every change goes through.
    const privacy = new PrivacyStore(store.keyv, logger.child({ component: "privacy" }), {
      cacheMs: store.kind === "redis" ? 0 : 10_000,
    });
    const moderation = new ModerationStore(store.keyv, logger.child({ component: "moderation" }));
    const memberData = new MemberData({
      store,
      history,
      privacy,
      settings,
      moderation,
      retentionDays: config.chat.historyTtlDays,
      logger: storeLogger,
    });
    const loaded = await openModel(
      config.model,
      modelOptions(config, store, prompts, tasks, logger, options),
    );
    const llm = options.decorateLlm ? options.decorateLlm(loaded) : loaded;
    const maintenance = new StoreMaintenance(store, history, storeLogger);
    maintenance.start();
    const outcomes =
      options.outcomes ?? new Outcomes((error) => logger.error({ err: error }, "an outcome listener failed"));
    const pipeline = new Pipeline({ llm, history, prompts, tasks, config, logger, outcomes });
    options.metrics?.watch(
      { model: llm, store: storeHealth(store, history) },
      { threads: config.model.runtime === "in-process" ? config.model.threads : undefined },
    );
    return {
      llm,
      store,
      get prompts() {
        return prompts;
      },
      get tasks() {
        return tasks;
      },
      pipeline,
      history,
      settings,
      moods: store.moods,
      privacy,
      moderation,
      memberData,
      maintenance,
      outcomes,
      async reload() {
        // Both folders are read and checked before anything changes: a bad file leaves the bot as it was.
        const newPrompts = loadPrompts(config.promptsDir);
        const newTasks = readTasks();
        const reloaded = await llm.reload(newPrompts, newTasks);
        const loaded = newTasks.filter((task) => !reloaded.withoutSequence.includes(task.name));
        prompts = newPrompts;
        tasks = loaded;
        pipeline.usePrompts(newPrompts, loaded);
        return {
          tasks: loaded.map((task) => task.name),
          needRestart: reloaded.withoutSequence,
          sentimentPrefixTokens: reloaded.sentimentPrefixTokens,
        };
      },
      async close() {
        await llm.close();
        await maintenance.stop();
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

/** The store as the metrics read it: the connection, and what the history holds while the store is away. */
function storeHealth(store: Store, history: HistoryStore): MetricSources["store"] {
  return {
    get reachable() {
      return store.reachable;
    },
    get bufferedTurns() {
      return history.bufferedTurns;
    },
    get errors() {
      return history.storeErrors;
    },
  };
}

function modelOptions(
  config: Config,
  store: Store,
  prompts: Prompts,
  tasks: readonly Task[],
  logger: Logger,
  options: AssembleOptions,
): OpenModelOptions {
  const { sharedCache } = config.sentiment;
  return {
    chatSpeedFloor: config.chat.speedFloor,
    sentiment: config.sentiment,
    ...(store.resultCache
      ? { sharedCache: { store: store.resultCache, budgetMs: sharedCache.budgetMs } }
      : {}),
    prompts,
    tasks,
    logger,
    ...(options.onDownloadProgress ? { onDownloadProgress: options.onDownloadProgress } : {}),
    ...(options.metrics
      ? { onPass: options.metrics.observePass, onServerRequest: options.metrics.observeServerRequest }
      : {}),
  };
}
