import { open } from "node:fs/promises";
import { basename } from "node:path";
import {
  getLlama,
  type Llama,
  type LlamaContext,
  LlamaLogLevel,
  type LlamaModel,
  type LlamaOptions,
} from "node-llama-cpp";
import { errorMessage, ModelLoadError } from "../../platform/errors.js";
import type { Logger } from "../../platform/logger.js";
import type { Prompts } from "../../prompts/prompts.js";
import { isLabelTask, type Task } from "../../tasks/tasks.js";
import { ChatRunner } from "./chat.js";
import { ChatPool } from "./chatPool.js";
import { buildClassifiers, type ClassifierSequences } from "./classifierSet.js";
import { LlamaRuntime } from "./llamaRuntime.js";
import { resolveModel } from "./modelFile.js";
import { EVALUATIONS_PER_COLLECTION, fullCollection, SamplerCollector } from "./samplerCollector.js";
import { ScheduledLlm, type SchedulingOptions } from "./scheduledLlm.js";

/** How often a model download reports its progress in the log. */
const DOWNLOAD_REPORT_MS = 5_000;

/**
 * Which compute backend to ask node-llama-cpp for; "auto" takes a GPU when one works and the CPU otherwise. The
 * config (src/platform/config.ts) spells the same union out itself: the model layer never imports the config, and the
 * config never imports the in-process runtime, so the two meet only where the assembly hands one to the other.
 */
export type GpuSetting = "auto" | "cuda" | "vulkan" | "metal" | "off";

export interface LoadModelOptions extends SchedulingOptions {
  /** A local .gguf file; when undefined, `uri` is resolved (and downloaded once) into `directory`. */
  readonly path: string | undefined;
  readonly uri: string;
  readonly directory: string;
  /** A download gives up after this many seconds without progress. */
  readonly downloadTimeoutS: number;
  readonly threads: number;
  readonly contextSize: number;
  readonly chatSequences: number;
  /** Sentiment sequences: how many messages one forward pass can classify side by side. */
  readonly sentimentSequences: number;
  readonly batchSize: number;
  readonly gpu: GpuSetting;
  readonly prompts: Prompts;
  /** Tasks defined in prompts/tasks: each label task gets its own cached-prefix sequence. */
  readonly tasks?: readonly Task[];
  /** Told how a model download is going, besides the log (the console shows it on its terminal). */
  readonly onDownloadProgress?: (percent: number) => void;
}

/** node-llama-cpp's `gpu` option for a setting. */
export function gpuOption(setting: GpuSetting): NonNullable<LlamaOptions["gpu"]> {
  return setting === "off" ? false : setting;
}

/**
 * Loads the model and builds the one owner of it: llama.cpp's runtime, wrapped in the pass scheduler (the result
 * caches go on top, in openModel). The only place that creates a Llama, model or context.
 */
export async function loadModel(options: LoadModelOptions): Promise<ScheduledLlm> {
  const runtime = await openRuntime(options);
  const llm = new ScheduledLlm(runtime, options);
  options.logger.info(
    {
      model: runtime.modelName,
      backend: runtime.backend,
      threads: options.threads,
      contextSize: runtime.contextSize,
      chatWrapper: runtime.chatWrapperName,
      chatSequences: options.chatSequences,
      sentimentSequences: options.sentimentSequences,
      batchSize: runtime.maxPassTokens,
      sentimentMethod: runtime.sentimentMethod,
      sentimentPrefixTokens: runtime.sentimentPrefixTokens,
      tasks: (options.tasks ?? []).map((task) => task.name),
    },
    "model loaded",
  );
  return llm;
}

/** Finds the file, checks it is GGUF, and loads it onto the backend with every lane's sequence. */
async function openRuntime(options: LoadModelOptions): Promise<LlamaRuntime> {
  const modelPath = await resolveModelPath(options);
  await assertGguf(modelPath);
  const llama = await openBackend(options.gpu, options.logger);
  let model: LlamaModel | undefined;
  try {
    model = await llama.loadModel({ modelPath });
    const labelTasks = (options.tasks ?? []).filter(isLabelTask);
    const context = await model.createContext({
      contextSize: options.contextSize,
      sequences: options.sentimentSequences + options.chatSequences + labelTasks.length,
      threads: options.threads,
      batchSize: Math.min(options.batchSize, options.contextSize),
      failedCreationRemedy: false,
    });
    const lanes = await buildLanes(llama, model, context, labelTasks, options);
    const samplers = new SamplerCollector(EVALUATIONS_PER_COLLECTION, fullCollection());
    return new LlamaRuntime({ ...lanes, llama, model, context, modelName: basename(modelPath), samplers });
  } catch (error) {
    await model?.dispose();
    await llama.dispose();
    throw new ModelLoadError(
      modelPath,
      `The model file ${modelPath} could not be loaded (${errorMessage(error)}). It may be truncated or not a supported GGUF model: delete it and start again to re-download, or point MODEL_PATH at another .gguf file.`,
      { cause: error },
    );
  }
}

/**
 * The compute backend. A GPU backend that was asked for by name but cannot start (no driver, no binary) falls
 * back to the CPU with a warning: a slower bot beats one that does not start.
 */
async function openBackend(setting: GpuSetting, logger: Logger): Promise<Llama> {
  const open = (gpu: NonNullable<LlamaOptions["gpu"]>) =>
    getLlama({
      gpu,
      build: "never",
      logLevel: LlamaLogLevel.error,
      logger: (level, message) => {
        const text = message.trim();
        if (text !== "") logger.debug({ llamaLevel: level }, text);
      },
    });
  if (setting === "auto" || setting === "off") return open(gpuOption(setting));
  try {
    return await open(gpuOption(setting));
  } catch (error) {
    logger.warn(
      { gpu: setting, err: error },
      `LLM_GPU=${setting} is not available on this machine; running on the CPU. Set LLM_GPU=auto or off to silence this.`,
    );
    return open(false);
  }
}

/** The chat sequences, then the sentiment lane and one lane per label task, all on one context. */
async function buildLanes(
  llama: Llama,
  model: LlamaModel,
  context: LlamaContext,
  labelTasks: readonly Task[],
  options: LoadModelOptions,
) {
  // The chat sequences come first: their wrapper renders every classifier's prompt.
  const runners = Array.from({ length: options.chatSequences }, () => new ChatRunner(context.getSequence()));
  const chat = new ChatPool(runners);
  const sequences: ClassifierSequences = {
    llama,
    model,
    chatWrapper: chat.any.chatWrapper,
    sentiment: Array.from({ length: options.sentimentSequences }, () => context.getSequence()),
    tasks: labelTasks.map(() => context.getSequence()),
  };
  const classifiers = await buildClassifiers(sequences, options.prompts, labelTasks);
  return { chat, sequences, classifiers };
}

function resolveModelPath(options: LoadModelOptions): Promise<string> {
  if (options.path !== undefined) return Promise.resolve(options.path);
  const { logger } = options;
  let lastReport = 0;
  logger.info({ uri: options.uri, directory: options.directory }, "finding the model");
  return resolveModel({
    uri: options.uri,
    directory: options.directory,
    stallTimeoutMs: options.downloadTimeoutS * 1000,
    onProgress: ({ downloadedBytes, totalBytes }) => {
      const now = Date.now();
      if (now - lastReport < DOWNLOAD_REPORT_MS && downloadedBytes < totalBytes) return;
      lastReport = now;
      const mb = (bytes: number) => Math.round(bytes / 1e6);
      const percent = Math.floor((100 * downloadedBytes) / Math.max(1, totalBytes));
      logger.info(
        { downloadedMb: mb(downloadedBytes), totalMb: mb(totalBytes) },
        `downloading the model: ${percent}%`,
      );
      options.onDownloadProgress?.(percent);
    },
  });
}

/** Fails fast, with a clear message, on a missing file or one that is not GGUF at all. */
async function assertGguf(path: string): Promise<void> {
  let magic: Buffer;
  try {
    const file = await open(path, "r");
    try {
      magic = Buffer.alloc(4);
      await file.read(magic, 0, 4, 0);
    } finally {
      await file.close();
    }
  } catch (error) {
    throw new ModelLoadError(
      path,
      `The model file ${path} cannot be read (${errorMessage(error)}). Set MODEL_PATH to an existing .gguf file, or unset it to download the default model.`,
      { cause: error },
    );
  }
  if (magic.toString("latin1") !== "GGUF") {
    throw new ModelLoadError(
      path,
      `The model file ${path} is not a GGUF file. moodbot runs GGUF models such as Qwen2.5-0.5B-Instruct Q8_0: set MODEL_PATH to a .gguf file.`,
    );
  }
}
