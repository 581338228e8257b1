import { readFileSync } from "node:fs";
import { errorMessage, type ServerProblem, ServerRequestError } from "../../platform/errors.js";
import type { Logger } from "../../platform/logger.js";
import type { Prompts } from "../../prompts/prompts.js";
import type { Task } from "../../tasks/tasks.js";
import type { Llm, ServerKind } from "../llm.js";
import type { ServerBackend } from "./backend.js";
import { ChatTemplate, ChatTemplateError } from "./chatTemplate.js";
import { ServerHttp } from "./http.js";
import { LlamaCppBackend } from "./llamaCpp.js";
import { OllamaBackend } from "./ollama.js";
import { OpenAiCompatibleBackend } from "./openAiCompatible.js";
import { ServerLlm } from "./serverLlm.js";
import { learnSession } from "./session.js";
import { VllmBackend } from "./vllm.js";

/*
 * The server runtime's entry point: one ServerLlm over the backend of the configured kind, or of the kind the
 * address turns out to speak ("auto", detected again on every reconnect).
 */

export interface ServerModelOptions {
  readonly logger: Logger;
  /** LLM_SERVER_URL as given, with or without a trailing /v1. */
  readonly url: string;
  /** Sent as Authorization: Bearer …; never logged. */
  readonly apiKey: string | undefined;
  readonly kind: ServerKind | "auto";
  /** LLM_SERVER_MODEL. */
  readonly model: string | undefined;
  /** Undefined: llama-server's total_slots, else a per-kind default (session.ts). */
  readonly maxInFlight: number | undefined;
  /** Each request's deadline. */
  readonly timeoutMs: number;
  /** The longest silence in a stream. */
  readonly streamIdleMs: number;
  /** LLM_SERVER_CHAT_TEMPLATE: a Jinja file, for servers without /props. */
  readonly chatTemplatePath: string | undefined;
  /** LLM_SERVER_PRIORITIES: vLLM runs with --scheduling-policy priority, so each request carries its priority. */
  readonly priorities?: boolean;
  /** LLM_SERVER_NUM_CTX: Ollama's num_ctx; undefined: the Modelfile's, else OLLAMA_FALLBACK_CONTEXT. */
  readonly numCtx?: number | undefined;
  /** LLM_SERVER_KEEP_ALIVE: Ollama's keep_alive (a duration, or seconds); undefined: Ollama's own. */
  readonly keepAlive?: string | number | undefined;
  readonly prompts: Prompts;
  readonly tasks: readonly Task[];
  /** Admission limits. */
  readonly sentiment: { readonly queueSize: number; readonly maxWaitMs: number };
  /** Told about every request, for metrics. */
  readonly onRequest?: (report: ServerRequestReport) => void;
  /** Retry waits (0.5 s doubling to 30 s by default), for tests. */
  readonly retry?: { readonly firstMs: number; readonly maxMs: number };
}

export interface ServerRequestReport {
  readonly kind: "probe" | "tokenize" | "classify" | "chat";
  readonly durationMs: number;
  /** Undefined when it succeeded. */
  readonly problem: ServerProblem | undefined;
}

/** Connections beyond the requests in flight: tokenisation runs beside them. */
const EXTRA_SOCKETS = 2;
/** The pool before the server says how many requests it takes. */
const FIRST_MAX_SOCKETS = 4;

/**
 * Never throws for a server problem: the Llm starts not ready and reconnects with capped backoff. A template file
 * that cannot be read or parsed is a configuration error, and does throw (ChatTemplateError).
 */
export async function openServerModel(options: ServerModelOptions): Promise<Llm> {
  const llm = createServerLlm(options);
  await llm.start();
  return llm;
}

/** The ServerLlm itself, not yet started: tests read its readiness and stats before the first contact. */
export function createServerLlm(options: ServerModelOptions): ServerLlm {
  const templateFile = readTemplateFile(options.chatTemplatePath);
  const http = new ServerHttp({
    url: options.url,
    apiKey: options.apiKey,
    maxSockets: (options.maxInFlight ?? FIRST_MAX_SOCKETS) + EXTRA_SOCKETS,
    timeoutMs: options.timeoutMs,
    streamIdleMs: options.streamIdleMs,
  });
  const reported = <T>(kind: ServerRequestReport["kind"], work: () => Promise<T>): Promise<T> =>
    reportRequest(options.onRequest, kind, work);
  let backend: ServerBackend | undefined;
  const warnedKinds = new Set<ServerKind>();
  const backendFor = async (signal: AbortSignal): Promise<ServerBackend> => {
    const kind =
      options.kind === "auto" ? await reported("probe", () => detectServerKind(http, signal)) : options.kind;
    // The backends share the one pool: one for another kind replaces it without closing it.
    if (backend?.kind !== kind) backend = createBackend(kind, http, options);
    // An explicit kind was checked with the config; a detected one is known only now.
    if (options.kind === "auto" && !warnedKinds.has(kind)) {
      warnedKinds.add(kind);
      warnUnreadSettings(kind, options);
    }
    return backend;
  };
  return new ServerLlm({
    logger: options.logger,
    kind: options.kind,
    model: options.model,
    sentiment: options.sentiment,
    prompts: options.prompts,
    tasks: options.tasks,
    learn: async (prompts, tasks, signal) => {
      const session = await learnSession(
        {
          backend: backendFor,
          templateFile,
          maxInFlight: options.maxInFlight,
          logger: options.logger,
          prompts,
          tasks,
          reported,
        },
        signal,
      );
      http.setMaxSockets(session.maxInFlight + EXTRA_SOCKETS);
      return session;
    },
    reported,
    closeTransport: () => http.close(),
    ...(options.retry ? { retry: options.retry } : {}),
  });
}

function createBackend(kind: ServerKind, http: ServerHttp, options: ServerModelOptions): ServerBackend {
  switch (kind) {
    case "llama.cpp":
      return new LlamaCppBackend(http);
    case "vllm":
      return new VllmBackend({
        transport: http,
        model: options.model,
        priorityScheduling: options.priorities === true,
      });
    case "ollama":
      return new OllamaBackend({
        transport: http,
        model: options.model,
        numCtx: options.numCtx,
        keepAlive: options.keepAlive,
      });
    case "openai":
      return new OpenAiCompatibleBackend({ transport: http, model: options.model, contextSize: undefined });
  }
}

/** One warning, per kind detected, naming the settings in effect that only another kind of server reads. */
function warnUnreadSettings(kind: ServerKind, options: ServerModelOptions): void {
  const settings: readonly (readonly [name: string, reader: ServerKind, inEffect: boolean])[] = [
    ["LLM_SERVER_PRIORITIES", "vllm", options.priorities === true],
    ["LLM_SERVER_NUM_CTX", "ollama", options.numCtx !== undefined],
    ["LLM_SERVER_KEEP_ALIVE", "ollama", options.keepAlive !== undefined],
  ];
  const unread = settings.filter(([, reader, inEffect]) => inEffect && reader !== kind);
  if (unread.length === 0) return;
  const named = unread.map(([name, reader]) => `${name} (${reader})`).join(", ");
  options.logger.warn(
    { serverKind: kind, ignored: unread.map(([name]) => name) },
    `The model server was detected as ${kind}, and these settings are for another kind of server, so they are ` +
      `ignored: ${named}. Remove them to silence this.`,
  );
}

/**
 * What the address speaks: llama-server answers GET /props (authenticated, so a wrong key fails here as
 * unauthorized rather than passing on the public /health), vLLM GET /version, Ollama GET /api/version; anything else
 * is taken for an OpenAI-compatible API. An unreachable server or a refused key ends the detection with that error.
 */
export async function detectServerKind(
  http: Pick<ServerHttp, "getJson">,
  signal: AbortSignal,
): Promise<ServerKind> {
  const answers = async (route: string, looksRight: (body: Record<string, unknown>) => boolean) => {
    try {
      const body = await http.getJson(route, { signal });
      return typeof body === "object" && body !== null && looksRight(body as Record<string, unknown>);
    } catch (error) {
      // Another kind's route is missing (404) or refused by its router: the next route is tried.
      if (error instanceof ServerRequestError && (error.problem === "http" || error.problem === "protocol")) {
        return false;
      }
      throw error;
    }
  };
  if (await answers("/props", (body) => "default_generation_settings" in body)) return "llama.cpp";
  if (await answers("/version", (body) => typeof body.version === "string")) return "vllm";
  if (await answers("/api/version", (body) => typeof body.version === "string")) return "ollama";
  return "openai";
}

function readTemplateFile(path: string | undefined): { path: string; text: string } | undefined {
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ChatTemplateError(
      path,
      `LLM_SERVER_CHAT_TEMPLATE names ${path}, which cannot be read (${errorMessage(error)}); fix the path or unset it`,
      { cause: error },
    );
  }
  // Parsed once now, so that a broken file stops startup instead of leaving the bot not ready for good.
  new ChatTemplate({ template: text, source: path, bosToken: undefined, eosToken: undefined });
  return { path, text };
}

async function reportRequest<T>(
  onRequest: ServerModelOptions["onRequest"],
  kind: ServerRequestReport["kind"],
  work: () => Promise<T>,
): Promise<T> {
  if (!onRequest) return work();
  const started = performance.now();
  try {
    const result = await work();
    onRequest({ kind, durationMs: performance.now() - started, problem: undefined });
    return result;
  } catch (error) {
    // An abort is the bot's own doing, not the server's: only server failures count as errors.
    if (error instanceof ServerRequestError) {
      onRequest({ kind, durationMs: performance.now() - started, problem: error.problem });
    }
    throw error;
  }
}

export { ServerLlm } from "./serverLlm.js";
