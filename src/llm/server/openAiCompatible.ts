import { ServerRequestError } from "../../platform/errors.js";
import type { ChatTurn } from "../../prompts/prompts.js";
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
  evaluatedFromUsage,
  firstChoice,
  isObject,
  type JsonObject,
  type JsonTransport,
  matchVoteTokensByText,
  noProbabilities,
  numberOrUndefined,
  objectAt,
  parseModelList,
  pickServedModel,
  protocolError,
  streamErrorEvent,
  stringOrUndefined,
  tokenLogprobs,
} from "./wire.js";

/*
 * Any server that speaks OpenAI's chat completions and nothing more: LM Studio, hosted APIs (not run here: built
 * and tested on responses from the `openai` npm package's types). They take chat messages, whose content the
 * prompt builder neutralised, and apply the model's template themselves. Labels come from the one generated
 * token's `top_logprobs` (at most 20 on chat routes), matched by their text: approximate ("top-logprobs"). A
 * server that returns no logprobs cannot classify. On a paid endpoint every message the bot reads becomes a billed
 * request.
 */

const MODELS = "GET /v1/models";
const CHAT = "POST /v1/chat/completions";

/** OpenAI's cap on top_logprobs for chat completions. */
export const OPENAI_TOP_LOGPROBS = 20;
/**
 * The context when /v1/models does not say (OpenAI's does not; vLLM's, LM Studio's v0 and OpenRouter's do): small,
 * so budgets stay inside any chat model, and cheap where every token is billed.
 */
export const OPENAI_FALLBACK_CONTEXT = 4096;

export interface OpenAiCompatibleBackendOptions {
  readonly transport: JsonTransport;
  /** LLM_SERVER_MODEL; required where the server lists several (every hosted API). */
  readonly model: string | undefined;
  /** The context to plan for when the model list does not give one. */
  readonly contextSize: number | undefined;
}

export const chatMessages = (turns: readonly ChatTurn[]): { role: ChatTurn["role"]; content: string }[] =>
  turns.map((turn) => ({ role: turn.role, content: turn.text }));

export function openAiLabelBody(model: string, turns: readonly ChatTurn[]): Record<string, unknown> {
  return {
    model,
    messages: chatMessages(turns),
    max_tokens: 1,
    temperature: 0,
    logprobs: true,
    top_logprobs: OPENAI_TOP_LOGPROBS,
    stream: false,
  };
}

export function parseOpenAiLabelReading(body: unknown, voteTexts: readonly string[]): LabelReading {
  const logprobs = firstChoice(body, CHAT).logprobs;
  const first = isObject(logprobs) ? arrayOrUndefined(logprobs.content)?.[0] : undefined;
  if (!isObject(first) || arrayOrUndefined(first.top_logprobs) === undefined) {
    throw noProbabilities(
      CHAT,
      "Use a server and model that return logprobs (LM Studio, OpenAI's chat models), or run llama-server.",
    );
  }
  const usage = objectAt(body, CHAT, "a JSON object").usage;
  return {
    logprobs: matchVoteTokensByText(tokenLogprobs(first.top_logprobs), voteTexts),
    method: "top-logprobs",
    evaluatedPromptTokens:
      isObject(usage) && isObject(usage.prompt_tokens_details) ? evaluatedFromUsage(usage) : undefined,
  };
}

export function openAiCompletionBody(
  model: string,
  turns: readonly ChatTurn[],
  maxTokens: number,
  temperature: number,
): Record<string, unknown> {
  return {
    model,
    messages: chatMessages(turns),
    max_tokens: maxTokens,
    temperature,
    stream: true,
    stream_options: { include_usage: true },
  };
}

/** Collects chat.completion.chunk events: `delta.content` pieces, the finish reason, and the closing usage chunk. */
export class ChatStreamReader {
  private text = "";
  private pieces = 0;
  private finish: string | undefined;
  private usage: JsonObject | undefined;

  constructor(private readonly onText: (text: string) => void) {}

  onEvent(event: unknown): void {
    const chunk = objectAt(event, CHAT, "a JSON event");
    const error = streamErrorEvent(chunk, CHAT);
    if (error) throw error;
    if (isObject(chunk.usage)) this.usage = chunk.usage;
    const choice = arrayOrUndefined(chunk.choices)?.[0];
    if (!isObject(choice)) return;
    const piece = isObject(choice.delta) ? stringOrUndefined(choice.delta.content) : undefined;
    if (piece) {
      this.text += piece;
      this.pieces += 1;
      this.onText(piece);
    }
    const finish = stringOrUndefined(choice.finish_reason);
    if (finish !== undefined) this.finish = finish;
  }

  result(): CompletionResult {
    return {
      text: this.text,
      stopReason: chatStopReason(this.finish),
      // Without include_usage support (some servers), each content chunk is about one token.
      generatedTokens: numberOrUndefined(this.usage?.completion_tokens) ?? this.pieces,
      evaluatedPromptTokens: evaluatedFromUsage(this.usage) ?? 0,
    };
  }
}

function chatStopReason(finish: string | undefined): CompletionResult["stopReason"] {
  switch (finish) {
    case "stop":
      return "eogToken";
    case "length":
      return "maxTokens";
    // The provider's filter ended the reply, not the model: the nearest of the bot's reasons is a stop trigger.
    case "content_filter":
      return "stopTrigger";
    default:
      throw protocolError(
        CHAT,
        finish === undefined ? "a finish reason" : `a known finish reason (got "${finish}")`,
      );
  }
}

const turnsOf = (prompt: ServerPrompt): readonly ChatTurn[] => {
  if (prompt.kind !== "messages") {
    throw new ServerRequestError(
      "unsupported",
      CHAT,
      `an OpenAI-compatible API is sent messages, not ${prompt.kind}`,
    );
  }
  return prompt.messages;
};

export class OpenAiCompatibleBackend implements ServerBackend {
  readonly kind = "openai" as const;
  readonly promptForms = ["messages"] as const;
  private model: string | undefined;

  constructor(private readonly options: OpenAiCompatibleBackendOptions) {}

  async probe(signal: AbortSignal): Promise<ServerFacts> {
    const served = parseModelList(await this.options.transport.getJson("/v1/models", { signal }), MODELS);
    const model = pickServedModel(
      served.map((entry) => entry.id),
      this.options.model,
      MODELS,
    );
    this.model = model;
    return {
      kind: "openai",
      model,
      contextSize:
        served.find((entry) => entry.id === model)?.contextSize ??
        this.options.contextSize ??
        OPENAI_FALLBACK_CONTEXT,
      slots: undefined,
      // The server applies the template to the messages itself.
      chatTemplate: undefined,
      bosToken: undefined,
      eosToken: undefined,
    };
  }

  async readLabels(request: LabelRequest): Promise<LabelReading> {
    const answer = await this.options.transport.postJson(
      "/v1/chat/completions",
      openAiLabelBody(this.requireModel(), turnsOf(request.prompt)),
      { signal: request.signal },
    );
    return parseOpenAiLabelReading(
      answer,
      request.voteTokens.map((vote) => vote.text),
    );
  }

  async complete(request: CompletionRequest): Promise<CompletionResult> {
    const reader = new ChatStreamReader(request.onText);
    const headers = conversationHeaders(request.conversationId);
    await this.options.transport.postStream(
      "/v1/chat/completions",
      openAiCompletionBody(
        this.requireModel(),
        turnsOf(request.prompt),
        request.maxTokens,
        request.temperature,
      ),
      { signal: request.signal, onEvent: (event) => reader.onEvent(event), ...(headers ? { headers } : {}) },
    );
    return reader.result();
  }

  close(): void {
    this.options.transport.close();
  }

  private requireModel(): string {
    if (this.model === undefined)
      throw new ServerRequestError("protocol", CHAT, `${CHAT} was asked before a probe`);
    return this.model;
  }
}
