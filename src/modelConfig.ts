import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { z } from "zod";
import { oneOf, optionalPositiveInt, optionalText, positiveInt } from "./configValues.js";
import { ConfigError } from "./errors.js";

/*
 * The config's model section: where the model runs (in the bot's process, or on an inference server that
 * LLM_SERVER_URL names) and that runtime's settings. Read by src/config.ts, which owns the environment.
 *
 * The literal unions below (GpuSetting, ServerKindSetting) are spelled out here rather than imported: the config
 * never imports the model layer, nor the model layer the config. The assembly hands `Config.model` to openModel
 * (src/llm/openModel.ts), whose own option types must accept it, so the compiler keeps the two in step.
 */

/** The recommended model: Qwen2.5-0.5B-Instruct, Q8_0, about 530 MB. */
export const DEFAULT_MODEL_URI = "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q8_0.gguf";

export const GPU_SETTINGS = ["auto", "cuda", "vulkan", "metal", "off"] as const;
/** The compute backend: auto takes a GPU when one works, else the CPU. */
export type GpuSetting = (typeof GPU_SETTINGS)[number];

export const SERVER_KIND_SETTINGS = ["auto", "llama.cpp", "vllm", "ollama", "openai"] as const;
/** The server's protocol, or auto: detected on an authenticated route. */
export type ServerKindSetting = (typeof SERVER_KIND_SETTINGS)[number];

/** The model in the bot's own process, through node-llama-cpp. */
export interface InProcessModelConfig {
  readonly runtime: "in-process";
  /** A local file, or undefined to resolve `uri` into `directory`. */
  readonly path: string | undefined;
  readonly uri: string;
  readonly directory: string;
  readonly threads: number;
  readonly contextSize: number;
  /** Chat sequences kept warm, one per recently active channel. */
  readonly chatSequences: number;
  /** Tokens evaluated in one forward pass; longer prompts take several. */
  readonly batchSize: number;
  /** Sentiment sequences: how many messages one forward pass can classify side by side. */
  readonly sentimentSequences: number;
  readonly gpu: GpuSetting;
  /** A model download gives up after this many seconds without progress. */
  readonly downloadTimeoutS: number;
}

/** The model on an inference server (llama-server, vLLM, Ollama, an OpenAI-compatible API). */
export interface ServerModelConfig {
  readonly runtime: "server";
  /** LLM_SERVER_URL as given, with or without a trailing /v1. */
  readonly url: string;
  /** Sent as Authorization: Bearer …; one of the secrets no log line holds. */
  readonly apiKey: string | undefined;
  readonly kind: ServerKindSetting;
  /** The served model to use, where the server serves several. */
  readonly model: string | undefined;
  /** Requests in flight at once; undefined: llama-server's slot count, else a default per kind. */
  readonly maxInFlight: number | undefined;
  /** Each request's deadline. */
  readonly timeoutMs: number;
  /** The longest silence in a streamed reply. */
  readonly streamIdleMs: number;
  /** A Jinja chat template file, for servers that do not expose the model's own. */
  readonly chatTemplatePath: string | undefined;
}

export type ModelConfig = InProcessModelConfig | ServerModelConfig;

const serverUrl = optionalText.refine(
  (raw) => raw === undefined || (URL.canParse(raw) && /^https?:$/.test(new URL(raw).protocol)),
  // The value is not repeated: a URL can carry credentials.
  { message: "must be an http:// or https:// URL" },
);

const existingFile = optionalText.refine((raw) => raw === undefined || existsSync(raw), {
  message: "names no file",
});

/** The model section's variables; src/config.ts adds them to its one schema. */
export const MODEL_ENV = {
  MODEL_PATH: optionalText,
  MODEL_URI: optionalText,
  MODELS_DIR: optionalText,
  MODEL_DOWNLOAD_TIMEOUT_S: positiveInt(60, 3600),
  LLM_THREADS: positiveInt(availableParallelism(), 256),
  LLM_CONTEXT_SIZE: positiveInt(2048, 131072),
  LLM_CHAT_SEQUENCES: positiveInt(2, 16),
  LLM_BATCH_SIZE: positiveInt(128, 4096),
  LLM_SENTIMENT_SEQUENCES: positiveInt(2, 32),
  LLM_GPU: oneOf(GPU_SETTINGS, "auto"),
  LLM_SERVER_URL: serverUrl,
  LLM_SERVER_API_KEY: optionalText,
  LLM_SERVER_KIND: oneOf(SERVER_KIND_SETTINGS, "auto"),
  LLM_SERVER_MODEL: optionalText,
  LLM_SERVER_MAX_IN_FLIGHT: optionalPositiveInt(1024),
  LLM_SERVER_TIMEOUT_MS: positiveInt(60_000, 3_600_000),
  LLM_SERVER_STREAM_IDLE_MS: positiveInt(30_000, 3_600_000),
  LLM_SERVER_CHAT_TEMPLATE: existingFile,
};

const modelSchema = z.object(MODEL_ENV);
type ModelEnv = z.infer<typeof modelSchema>;

export const MODEL_FIXES: Record<string, string> = {
  LLM_THREADS: "Set it to the number of CPU cores, or remove it to use all of them.",
  LLM_CONTEXT_SIZE: "Remove it to use 2048, or lower it on a machine with little memory.",
  LLM_CHAT_SEQUENCES: "Remove it to keep 2 channels warm; each one costs a context's worth of memory.",
  LLM_BATCH_SIZE:
    "Remove it to use 128, or raise it (up to LLM_CONTEXT_SIZE) on a machine with memory to spare.",
  LLM_SENTIMENT_SEQUENCES:
    "Remove it to classify up to 2 messages per forward pass; each one costs a context's worth of memory.",
  MODEL_DOWNLOAD_TIMEOUT_S:
    "Remove it to give up a download after 60 s without progress, or raise it on a slow or flaky connection.",
  LLM_GPU: "Remove it to use a GPU when one works and the CPU otherwise, or set off to always use the CPU.",
  LLM_SERVER_URL:
    "Set it to the inference server's address, such as http://127.0.0.1:8080 for llama-server (a trailing /v1 is fine), or remove it to run the model in the bot's process.",
  LLM_SERVER_KIND:
    "Remove it to detect the server's kind, or name it: llama.cpp (llama-server), vllm, ollama, or openai for any other OpenAI-compatible API (LM Studio, a hosted one).",
  LLM_SERVER_MAX_IN_FLIGHT:
    "Remove it to take llama-server's slot count (or the default for the server's kind), or set how many requests the server decodes side by side.",
  LLM_SERVER_TIMEOUT_MS: "Remove it to give each request to the server 60000 ms.",
  LLM_SERVER_STREAM_IDLE_MS: "Remove it to give up on a streamed reply silent for 30000 ms.",
  LLM_SERVER_CHAT_TEMPLATE:
    "Point it at the served model's Jinja chat template (a .jinja file, or the chat_template of its tokenizer_config.json saved as one), or remove it where the server exposes the template (llama-server does).",
};

/** What the in-process runtime reads, and a server makes moot. */
const IN_PROCESS_VARIABLES = [
  "MODEL_PATH",
  "MODEL_URI",
  "MODELS_DIR",
  "MODEL_DOWNLOAD_TIMEOUT_S",
  "LLM_THREADS",
  "LLM_GPU",
  "LLM_CONTEXT_SIZE",
  "LLM_CHAT_SEQUENCES",
  "LLM_SENTIMENT_SEQUENCES",
  "LLM_BATCH_SIZE",
  "CHAT_SPEED_FLOOR",
] as const;

const SERVER_VARIABLES = Object.keys(MODEL_ENV).filter((name) => name.startsWith("LLM_SERVER_"));

const isSet = (value: string | undefined) => value !== undefined && value.trim() !== "";

/**
 * The environment as the chosen runtime reads it, and one warning naming the variables the other runtime would
 * have read. With LLM_SERVER_URL set, the in-process variables are left out before they are checked: a value the
 * bot ignores never stops it.
 */
export function forChosenRuntime(env: Record<string, string | undefined>): {
  readonly env: Record<string, string | undefined>;
  readonly warnings: readonly string[];
} {
  if (isSet(env.LLM_SERVER_URL)) {
    const ignored = IN_PROCESS_VARIABLES.filter((name) => isSet(env[name]));
    const kept = { ...env };
    for (const name of IN_PROCESS_VARIABLES) delete kept[name];
    const warning = `LLM_SERVER_URL is set, so the model runs on that server and these in-process settings are ignored: ${ignored.join(", ")}. Remove them to silence this.`;
    return { env: kept, warnings: ignored.length > 0 ? [warning] : [] };
  }
  const unused = SERVER_VARIABLES.filter((name) => isSet(env[name]));
  const warning = `LLM_SERVER_URL is not set, so the model runs in the bot's process and these server settings are ignored: ${unused.join(", ")}. Set LLM_SERVER_URL to use a server, or remove them.`;
  return { env, warnings: unused.length > 0 ? [warning] : [] };
}

/** The model section of the parsed environment: a server when LLM_SERVER_URL is set, else the bot's process. */
export function modelConfigOf(e: ModelEnv): ModelConfig {
  if (e.LLM_SERVER_URL !== undefined) {
    return {
      runtime: "server",
      url: e.LLM_SERVER_URL,
      apiKey: e.LLM_SERVER_API_KEY,
      kind: e.LLM_SERVER_KIND,
      model: e.LLM_SERVER_MODEL,
      maxInFlight: e.LLM_SERVER_MAX_IN_FLIGHT,
      timeoutMs: e.LLM_SERVER_TIMEOUT_MS,
      streamIdleMs: e.LLM_SERVER_STREAM_IDLE_MS,
      chatTemplatePath: e.LLM_SERVER_CHAT_TEMPLATE,
    };
  }
  return {
    runtime: "in-process",
    path: e.MODEL_PATH,
    uri: e.MODEL_URI ?? DEFAULT_MODEL_URI,
    directory: e.MODELS_DIR ?? "./models",
    threads: e.LLM_THREADS,
    contextSize: e.LLM_CONTEXT_SIZE,
    chatSequences: e.LLM_CHAT_SEQUENCES,
    batchSize: e.LLM_BATCH_SIZE,
    sentimentSequences: e.LLM_SENTIMENT_SEQUENCES,
    gpu: e.LLM_GPU,
    downloadTimeoutS: e.MODEL_DOWNLOAD_TIMEOUT_S,
  };
}

/**
 * The config, for a tool that runs the model in its own process whatever LLM_SERVER_URL says (the bench's pass-cost
 * fit, the eval's baselines); a ConfigError when the model is on a server.
 */
export function inProcessConfig<C extends { readonly model: ModelConfig }>(
  config: C,
  tool: string,
): C & { readonly model: InProcessModelConfig } {
  const { model } = config;
  if (model.runtime === "in-process") return Object.freeze({ ...config, model });
  throw new ConfigError(
    "LLM_SERVER_URL",
    `is set, and ${tool} runs the model in its own process`,
    "Unset LLM_SERVER_URL for this command, and set MODEL_PATH or MODEL_URI for the model it loads.",
  );
}
