import type { Logger } from "../platform/logger.js";
import type { Prompts } from "../prompts/prompts.js";
import type { Task } from "../tasks/tasks.js";
import type { LoadModelOptions } from "./inProcess/model.js";
import type { Llm, PassReport } from "./llm.js";
import { ResultCachedLlm } from "./resultCachedLlm.js";
import { openServerModel, type ServerModelOptions, type ServerRequestReport } from "./server/index.js";
import type { SharedResultStore } from "./sharedResultCache.js";

/*
 * The one place that chooses the runtime. Everything above it sees an `Llm`; the in-process runtime
 * (./inProcess/, the only folder that imports node-llama-cpp) is imported here and by nothing else in the bot.
 */

/** The in-process runtime's settings: what `Config.model` holds when no LLM_SERVER_URL is set. */
export type InProcessChoice = { readonly runtime: "in-process" } & Pick<
  LoadModelOptions,
  | "path"
  | "uri"
  | "directory"
  | "downloadTimeoutS"
  | "threads"
  | "contextSize"
  | "chatSequences"
  | "sentimentSequences"
  | "batchSize"
  | "gpu"
>;

/** The server runtime's settings: what `Config.model` holds with LLM_SERVER_URL set. */
export type ServerChoice = { readonly runtime: "server" } & Pick<
  ServerModelOptions,
  "url" | "apiKey" | "kind" | "model" | "maxInFlight" | "timeoutMs" | "streamIdleMs" | "chatTemplatePath"
> &
  // Optional for the runtime's own callers (tests), required of the config: none is dropped on the way.
  Required<Pick<ServerModelOptions, "priorities" | "numCtx" | "keepAlive">>;

/**
 * Where the model runs. Spelled out here, not imported from the config (the model layer never imports it): the
 * config's model section must fit this, and the compiler checks that where the assembly hands one to the other.
 */
export type RuntimeChoice = InProcessChoice | ServerChoice;

/** What either runtime is opened with. */
export interface OpenModelOptions {
  readonly logger: Logger;
  readonly prompts: Prompts;
  readonly tasks: readonly Task[];
  /** Admission limits of mood reactions, and the size of the process's result cache (0 turns it off). */
  readonly sentiment: { readonly queueSize: number; readonly maxWaitMs: number; readonly cacheSize: number };
  /** A result cache shared with other processes, and how long a lookup in it may take. */
  readonly sharedCache?: { readonly store: SharedResultStore; readonly budgetMs: number };
  /** In-process: while a reply streams, it keeps at least this share of its speed alone (0 to 1). */
  readonly chatSpeedFloor: number;
  /** In-process: how a model download is going, besides the log. */
  readonly onDownloadProgress?: (percent: number) => void;
  /** In-process: told about every forward pass, for metrics. */
  readonly onPass?: (pass: PassReport) => void;
  /** On a server: told about every request, for metrics. */
  readonly onServerRequest?: (report: ServerRequestReport) => void;
}

/** Opens the chosen runtime and puts the result caches in front of it. */
export async function openModel(choice: RuntimeChoice, options: OpenModelOptions): Promise<Llm> {
  const model =
    choice.runtime === "in-process" ? await inProcess(choice, options) : await server(choice, options);
  const { sharedCache } = options;
  return new ResultCachedLlm(model, {
    logger: options.logger,
    cacheSize: options.sentiment.cacheSize,
    ...(sharedCache ? { shared: sharedCache } : {}),
  });
}

async function inProcess(choice: InProcessChoice, options: OpenModelOptions): Promise<Llm> {
  // Loaded only here: a process whose model is on a server never loads node-llama-cpp (some 40 MB of memory).
  const { loadModel } = await import("./inProcess/model.js");
  const { runtime: _runtime, ...settings } = choice;
  return loadModel({
    ...settings,
    logger: options.logger,
    prompts: options.prompts,
    tasks: options.tasks,
    sentiment: { queueSize: options.sentiment.queueSize, maxWaitMs: options.sentiment.maxWaitMs },
    chatSpeedFloor: options.chatSpeedFloor,
    ...(options.onDownloadProgress ? { onDownloadProgress: options.onDownloadProgress } : {}),
    ...(options.onPass ? { onPass: options.onPass } : {}),
  });
}

/** Never fails for a server problem: the model starts not ready and reconnects on its own. */
function server(choice: ServerChoice, options: OpenModelOptions): Promise<Llm> {
  const { runtime: _runtime, ...settings } = choice;
  return openServerModel({
    ...settings,
    logger: options.logger,
    prompts: options.prompts,
    tasks: options.tasks,
    sentiment: { queueSize: options.sentiment.queueSize, maxWaitMs: options.sentiment.maxWaitMs },
    ...(options.onServerRequest ? { onRequest: options.onServerRequest } : {}),
  });
}
