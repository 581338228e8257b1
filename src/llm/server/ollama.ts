import { ServerRequestError } from "../../platform/errors.js";
import type {
  CompletionRequest,
  CompletionResult,
  LabelReading,
  LabelRequest,
  ServerBackend,
  ServerFacts,
  ServerPrompt,
} from "./backend.js";
import {
  arrayOrUndefined,
  conversationHeaders,
  isObject,
  type JsonTransport,
  matchVoteTokensByText,
  noProbabilities,
  numberOrUndefined,
  objectAt,
  pickServedModel,
  protocolError,
  stringOrUndefined,
  tokenLogprobs,
} from "./wire.js";

/*
 * Ollama's native API (not run here: built and tested on responses from its documentation and the `ollama` npm
 * package's types). Prompts go to /api/generate with `raw: true`, as text the bot rendered from the chat template
 * that LLM_SERVER_CHAT_TEMPLATE names: Ollama's own templates are Go templates, which the bot cannot render, so
 * /api/show's `template` is not used. Member text arrives with its control-token strings neutralised, because
 * Ollama parses them in a raw prompt. Labels come from the one generated token's `top_logprobs` (Ollama 0.12.11 or
 * later, at most 20), matched by their text: approximate ("top-logprobs"). Ollama has no key of its own; a reverse
 * proxy in front of it may ask for one, and it is sent on every request.
 */

const TAGS = "GET /api/tags";
const SHOW = "POST /api/show";
const VERSION = "GET /api/version";
const GENERATE = "POST /api/generate";

/** Ollama's cap on top_logprobs. */
export const OLLAMA_TOP_LOGPROBS = 20;
/** The first release that returns logprobs. */
const LOGPROBS_SINCE: readonly [number, number, number] = [0, 12, 11];
/**
 * The context when neither the bot nor the model's Modelfile sets num_ctx: Ollama's own default has been 2048,
 * then 4096, then a size picked from the GPU's memory, so the bot cannot know it and sends this one explicitly.
 */
export const OLLAMA_FALLBACK_CONTEXT = 4096;

export interface OllamaBackendOptions {
  readonly transport: JsonTransport;
  /** LLM_SERVER_MODEL ("qwen3" matches "qwen3:latest"); when unset the server must list exactly one model. */
  readonly model: string | undefined;
  /**
   * num_ctx, sent on every request: Ollama reloads a model whenever a request asks for another size, so every
   * request asks for the same one. Unset: the Modelfile's num_ctx, else OLLAMA_FALLBACK_CONTEXT.
   */
  readonly numCtx: number | undefined;
  /** keep_alive ("30m", or seconds; -1 keeps the model loaded): unset, Ollama unloads it after 5 idle minutes. */
  readonly keepAlive: string | number | undefined;
}

export function parseOllamaTags(body: unknown): string[] {
  const models = arrayOrUndefined(objectAt(body, TAGS, "a JSON object").models);
  if (models === undefined) throw protocolError(TAGS, "a model list");
  return models.flatMap((model) => {
    const name = isObject(model)
      ? (stringOrUndefined(model.model) ?? stringOrUndefined(model.name))
      : undefined;
    return name === undefined ? [] : [name];
  });
}

export const sameOllamaModel = (listed: string, wanted: string): boolean =>
  listed === wanted || (!wanted.includes(":") && listed === `${wanted}:latest`);

/** What /api/show tells: the trained context (model_info "<arch>.context_length") and the Modelfile's num_ctx. */
export interface OllamaModelShow {
  readonly trainedContext: number | undefined;
  readonly modelfileNumCtx: number | undefined;
}

export function parseOllamaShow(body: unknown): OllamaModelShow {
  const show = objectAt(body, SHOW, "a JSON object");
  const info = isObject(show.model_info) ? show.model_info : {};
  const arch = stringOrUndefined(info["general.architecture"]);
  const trainedContext = arch === undefined ? undefined : numberOrUndefined(info[`${arch}.context_length`]);
  const numCtx = /^num_ctx\s+(\d+)\s*$/m.exec(stringOrUndefined(show.parameters) ?? "")?.[1];
  return { trainedContext, modelfileNumCtx: numCtx === undefined ? undefined : Number(numCtx) };
}

/** The context every request asks for: the bot's setting or the Modelfile's, never above what the model was trained on. */
export function ollamaContextSize(show: OllamaModelShow, numCtx: number | undefined): number {
  const wanted = numCtx ?? show.modelfileNumCtx ?? OLLAMA_FALLBACK_CONTEXT;
  return show.trainedContext === undefined ? wanted : Math.min(wanted, show.trainedContext);
}

/** True for "0.12.11" and later; an unreadable version (a fork, a build from source) is given the benefit. */
export function ollamaReturnsLogprobs(version: string | undefined): boolean {
  const parts = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version ?? "");
  if (!parts) return true;
  const found = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  for (let index = 0; index < 3; index += 1) {
    const have = found[index] ?? 0;
    const need = LOGPROBS_SINCE[index] ?? 0;
    if (have !== need) return have > need;
  }
  return true;
}

export interface OllamaBodyInput {
  readonly model: string;
  readonly text: string;
  readonly numCtx: number;
  readonly keepAlive: string | number | undefined;
}

/** One token at temperature 0, with no `format` (a grammar would change the distribution read). */
export function ollamaLabelBody(input: OllamaBodyInput): Record<string, unknown> {
  return {
    model: input.model,
    prompt: input.text,
    raw: true,
    stream: false,
    logprobs: true,
    top_logprobs: OLLAMA_TOP_LOGPROBS,
    options: { num_predict: 1, temperature: 0, num_ctx: input.numCtx },
    ...(input.keepAlive === undefined ? {} : { keep_alive: input.keepAlive }),
  };
}

export function parseOllamaLabelReading(body: unknown, voteTexts: readonly string[]): LabelReading {
  const answer = objectAt(body, GENERATE, "a JSON object");
  const first = arrayOrUndefined(answer.logprobs)?.[0];
  if (!isObject(first) || arrayOrUndefined(first.top_logprobs) === undefined) {
    throw noProbabilities(GENERATE, "Ollama returns them from version 0.12.11.");
  }
  return {
    logprobs: matchVoteTokensByText(tokenLogprobs(first.top_logprobs), voteTexts),
    method: "top-logprobs",
    evaluatedPromptTokens: numberOrUndefined(answer.prompt_eval_count),
  };
}

export interface OllamaCompletionBodyInput extends OllamaBodyInput {
  readonly maxTokens: number;
  readonly temperature: number;
}

export function ollamaCompletionBody(input: OllamaCompletionBodyInput): Record<string, unknown> {
  return {
    model: input.model,
    prompt: input.text,
    raw: true,
    stream: true,
    options: { num_predict: input.maxTokens, temperature: input.temperature, num_ctx: input.numCtx },
    ...(input.keepAlive === undefined ? {} : { keep_alive: input.keepAlive }),
  };
}

/** Collects /api/generate's NDJSON stream: `response` pieces, then one object with `done: true` and the counts. */
export class OllamaStreamReader {
  private text = "";
  private done: { reason: string | undefined; evaluated: number; generated: number } | undefined;

  constructor(private readonly onText: (text: string) => void) {}

  onEvent(event: unknown): void {
    const line = objectAt(event, GENERATE, "a JSON line");
    // Ollama writes {"error": "…"} as a line once it has begun; its text may quote the prompt, so it stays out.
    if (line.error !== undefined)
      throw new ServerRequestError("http", GENERATE, `${GENERATE} failed mid-stream`);
    const piece = stringOrUndefined(line.response);
    if (piece) {
      this.text += piece;
      this.onText(piece);
    }
    if (line.done === true) {
      this.done = {
        reason: stringOrUndefined(line.done_reason),
        // Ollama leaves prompt_eval_count out when the whole prompt came from its cache.
        evaluated: numberOrUndefined(line.prompt_eval_count) ?? 0,
        generated: numberOrUndefined(line.eval_count) ?? 0,
      };
    }
  }

  result(): CompletionResult {
    if (!this.done) throw protocolError(GENERATE, "its closing line (done: true)");
    const { reason } = this.done;
    if (reason !== "stop" && reason !== "length") {
      throw protocolError(
        GENERATE,
        reason === undefined ? "a done_reason" : `a known done_reason (got "${reason}")`,
      );
    }
    return {
      text: this.text,
      // Ollama says "stop" both for the end-of-text token and for a stop string: the bot sets no stop strings.
      stopReason: reason === "length" ? "maxTokens" : "eogToken",
      generatedTokens: this.done.generated,
      evaluatedPromptTokens: this.done.evaluated,
    };
  }
}

const textOf = (prompt: ServerPrompt): string => {
  if (prompt.kind !== "text") {
    throw new ServerRequestError(
      "unsupported",
      GENERATE,
      `Ollama's raw mode is sent text, not ${prompt.kind}`,
    );
  }
  return prompt.text;
};

export class OllamaBackend implements ServerBackend {
  readonly kind = "ollama" as const;
  readonly promptForms = ["text"] as const;
  private model: string | undefined;
  private numCtx: number | undefined;

  constructor(private readonly options: OllamaBackendOptions) {}

  async probe(signal: AbortSignal): Promise<ServerFacts> {
    const { transport } = this.options;
    const listed = parseOllamaTags(await transport.getJson("/api/tags", { signal }));
    const model = pickServedModel(listed, this.options.model, TAGS, sameOllamaModel);
    const show = parseOllamaShow(await transport.postJson("/api/show", { model }, { signal }));
    const version = stringOrUndefined(
      objectAt(await transport.getJson("/api/version", { signal }), VERSION, "a JSON object").version,
    );
    if (!ollamaReturnsLogprobs(version)) {
      throw noProbabilities(
        VERSION,
        `Ollama ${version} is older than 0.12.11, the first to return them; upgrade it.`,
      );
    }
    this.model = model;
    this.numCtx = ollamaContextSize(show, this.options.numCtx);
    return {
      kind: "ollama",
      model,
      contextSize: this.numCtx,
      // OLLAMA_NUM_PARALLEL is not visible over the API.
      slots: undefined,
      chatTemplate: undefined,
      bosToken: undefined,
      eosToken: undefined,
    };
  }

  async readLabels(request: LabelRequest): Promise<LabelReading> {
    const answer = await this.options.transport.postJson(
      "/api/generate",
      ollamaLabelBody(this.bodyInput(request.prompt)),
      {
        signal: request.signal,
      },
    );
    return parseOllamaLabelReading(
      answer,
      request.voteTokens.map((vote) => vote.text),
    );
  }

  async complete(request: CompletionRequest): Promise<CompletionResult> {
    const reader = new OllamaStreamReader(request.onText);
    const headers = conversationHeaders(request.conversationId);
    await this.options.transport.postStream(
      "/api/generate",
      ollamaCompletionBody({
        ...this.bodyInput(request.prompt),
        maxTokens: request.maxTokens,
        temperature: request.temperature,
      }),
      { signal: request.signal, onEvent: (event) => reader.onEvent(event), ...(headers ? { headers } : {}) },
    );
    return reader.result();
  }

  close(): void {
    this.options.transport.close();
  }

  private bodyInput(prompt: ServerPrompt): OllamaBodyInput {
    if (this.model === undefined || this.numCtx === undefined) {
      throw new ServerRequestError("protocol", GENERATE, `${GENERATE} was asked before a probe`);
    }
    return {
      model: this.model,
      text: textOf(prompt),
      numCtx: this.numCtx,
      keepAlive: this.options.keepAlive,
    };
  }
}
