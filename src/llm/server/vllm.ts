import { ServerRequestError } from "../../platform/errors.js";
import type { JobPriority } from "../llm.js";
import type {
  CompletionRequest,
  CompletionResult,
  LabelReading,
  LabelRequest,
  ServerBackend,
  ServerFacts,
  ServerPrompt,
  VoteToken,
} from "./backend.js";
import { controlTokenNeutraliser } from "./controlTokens.js";
import {
  arrayOrUndefined,
  conversationHeaders,
  evaluatedFromUsage,
  firstChoice,
  isObject,
  type JsonObject,
  type JsonTransport,
  noProbabilities,
  numberOrUndefined,
  objectAt,
  parseModelList,
  pickServedModel,
  protocolError,
  streamErrorEvent,
  stringOrUndefined,
} from "./wire.js";

/*
 * vLLM's OpenAI-compatible server (not run here: built and tested on responses from its source). Prompts go as
 * token ids, from its /tokenize, so its prefix caching sees the same ids every time. Labels are read with
 * `logprob_token_ids` (vLLM PR #43463): the raw log-probabilities of exactly the vote tokens, which makes the label
 * softmax exact ("logits"). An older vLLM ignores that field, so the probe asks once whether it is honoured; if
 * not, the top 20 raw log-probabilities are read instead ("top-logprobs"): exact for labels in the top 20, a vote
 * token outside it is unknown. vLLM's --max-logprobs (20 by default) must allow 20.
 */

const MODELS = "GET /v1/models";
const TOKENIZE = "POST /tokenize";
const DETOKENIZE = "POST /detokenize";
const COMPLETIONS = "POST /v1/completions";

/** The most vLLM returns by default (--max-logprobs 20), and what older versions are asked for. */
export const VLLM_TOP_LOGPROBS = 20;
/** vLLM's cap on `logprob_token_ids` (MAX_LOGPROB_TOKEN_IDS in vllm/sampling_params.py). */
const MAX_LOGPROB_TOKEN_IDS = 128;
/** A text whose tokens the model is very unlikely to predict as its two best next tokens (the probe's test). */
const PROBE_TEXT = "moodbot capability probe";

export interface VllmBackendOptions {
  readonly transport: JsonTransport;
  /** LLM_SERVER_MODEL; when unset the server must serve exactly one model. */
  readonly model: string | undefined;
  /** The server runs with --scheduling-policy priority: send each request's priority (vLLM rejects it otherwise). */
  readonly priorityScheduling: boolean;
}

export function parseTokenize(body: unknown): number[] {
  const tokens = arrayOrUndefined(objectAt(body, TOKENIZE, "a JSON object").tokens);
  if (tokens === undefined || !tokens.every((token) => Number.isInteger(token))) {
    throw protocolError(TOKENIZE, "token ids");
  }
  return tokens as number[];
}

/** vLLM's queue: lower runs first, 0 is everyone else's default, so background work yields to all of it. */
const vllmPriority = (priority: JobPriority | undefined): number => (priority === "background" ? 1 : 0);

export interface VllmLabelBodyInput {
  readonly model: string;
  readonly tokens: readonly number[];
  readonly voteIds: readonly number[];
  /** The server honours logprob_token_ids (learned by the probe). */
  readonly exact: boolean;
  /** Set only when the server schedules by priority. */
  readonly priority: number | undefined;
}

/** One token at temperature 0 over the cached prefix, its log-probabilities keyed "token_id:<id>". */
export function vllmLabelBody(input: VllmLabelBodyInput): Record<string, unknown> {
  return {
    model: input.model,
    prompt: input.tokens,
    max_tokens: 1,
    temperature: 0,
    // With logprob_token_ids, vLLM wants `logprobs` set (older revisions: equal to the ids' count).
    logprobs: input.exact ? input.voteIds.length : VLLM_TOP_LOGPROBS,
    ...(input.exact ? { logprob_token_ids: input.voteIds } : {}),
    return_tokens_as_token_ids: true,
    ...(input.priority === undefined ? {} : { priority: input.priority }),
  };
}

/** The first generated position's log-probabilities, by token id ("token_id:123" keys). */
export function firstPositionLogprobs(body: unknown, route: string): Map<number, number> | undefined {
  const logprobs = firstChoice(body, route).logprobs;
  if (!isObject(logprobs)) return undefined;
  const first = arrayOrUndefined(logprobs.top_logprobs)?.[0];
  if (!isObject(first)) return undefined;
  const byId = new Map<number, number>();
  for (const [key, value] of Object.entries(first)) {
    const id = /^token_id:(\d+)$/.exec(key)?.[1];
    const logprob = numberOrUndefined(value);
    if (id !== undefined && logprob !== undefined) byId.set(Number(id), logprob);
  }
  return byId;
}

export function parseVllmLabelReading(
  body: unknown,
  voteTokens: readonly VoteToken[],
  exact: boolean,
): LabelReading {
  const byId = firstPositionLogprobs(body, COMPLETIONS);
  if (byId === undefined) {
    throw noProbabilities(COMPLETIONS, "Start vLLM with --max-logprobs 20 or more.");
  }
  const logprobs = voteTokens.map((vote) => (vote.id === undefined ? undefined : byId.get(vote.id)));
  if (exact && voteTokens.some((vote, index) => vote.id !== undefined && logprobs[index] === undefined)) {
    throw protocolError(COMPLETIONS, "a log-probability for every token in logprob_token_ids");
  }
  const usage = objectAt(body, COMPLETIONS, "a JSON object").usage;
  // Only a server started with --enable-prompt-tokens-details says what came from its prefix cache.
  const cachedKnown = isObject(usage) && isObject(usage.prompt_tokens_details);
  return {
    logprobs,
    method: exact ? "logits" : "top-logprobs",
    evaluatedPromptTokens: cachedKnown ? evaluatedFromUsage(usage) : undefined,
  };
}

export interface VllmCompletionBodyInput {
  readonly model: string;
  readonly tokens: readonly number[];
  readonly maxTokens: number;
  readonly temperature: number;
  readonly priority: number | undefined;
}

export function vllmCompletionBody(input: VllmCompletionBodyInput): Record<string, unknown> {
  return {
    model: input.model,
    prompt: input.tokens,
    max_tokens: input.maxTokens,
    temperature: input.temperature,
    stream: true,
    stream_options: { include_usage: true },
    ...(input.priority === undefined ? {} : { priority: input.priority }),
  };
}

/**
 * Collects a streamed /v1/completions answer (the same shape serves OpenAI's legacy completions): each chunk's
 * `choices[0].text`, the finish reason, and the usage chunk that vLLM sends last with `include_usage`.
 */
export class CompletionStreamReader {
  private text = "";
  private pieces = 0;
  private finish: string | undefined;
  private stopReason: unknown;
  private usage: JsonObject | undefined;

  constructor(
    private readonly route: string,
    private readonly onText: (text: string) => void,
    private readonly promptTokens: number,
  ) {}

  onEvent(event: unknown): void {
    const chunk = objectAt(event, this.route, "a JSON event");
    const error = streamErrorEvent(chunk, this.route);
    if (error) throw error;
    if (isObject(chunk.usage)) this.usage = chunk.usage;
    const choice = arrayOrUndefined(chunk.choices)?.[0];
    if (!isObject(choice)) return;
    const piece = stringOrUndefined(choice.text);
    if (piece) {
      this.text += piece;
      this.pieces += 1;
      this.onText(piece);
    }
    const finish = stringOrUndefined(choice.finish_reason);
    if (finish !== undefined) {
      this.finish = finish;
      this.stopReason = choice.stop_reason;
    }
  }

  result(): CompletionResult {
    return {
      text: this.text,
      stopReason: completionStopReason(this.finish, this.stopReason, this.route),
      generatedTokens: numberOrUndefined(this.usage?.completion_tokens) ?? this.pieces,
      evaluatedPromptTokens: evaluatedFromUsage(this.usage) ?? this.promptTokens,
    };
  }
}

/** vLLM's `stop_reason` is the stop string that matched, a stop token's id, or null for the end-of-text token. */
function completionStopReason(finish: string | undefined, stopReason: unknown, route: string) {
  if (finish === "length") return "maxTokens" as const;
  if (finish === "stop")
    return typeof stopReason === "string" ? ("stopTrigger" as const) : ("eogToken" as const);
  throw protocolError(
    route,
    finish === undefined ? "a finish reason" : `a known finish reason (got "${finish}")`,
  );
}

const tokensOf = (prompt: ServerPrompt, route: string): readonly number[] => {
  if (prompt.kind !== "tokens") {
    throw new ServerRequestError("unsupported", route, `vLLM is sent token prompts, not ${prompt.kind}`);
  }
  return prompt.tokens;
};

export class VllmBackend implements ServerBackend {
  readonly kind = "vllm" as const;
  readonly promptForms = ["tokens"] as const;
  readonly tokenizer: NonNullable<ServerBackend["tokenizer"]>;
  private model: string | undefined;
  /** Whether the server honours logprob_token_ids: learned on every probe. */
  private exact = false;
  /** vLLM's tokenizer parses control-token strings in any text; member text gets them broken first. */
  private readonly neutralise = controlTokenNeutraliser();

  constructor(private readonly options: VllmBackendOptions) {
    this.tokenizer = {
      tokenize: (text, special, signal) =>
        this.tokenize(special ? text : this.neutralise(text), false, signal),
      detokenize: async (tokens, signal) => {
        const body = await this.options.transport.postJson(
          "/detokenize",
          { model: this.requireModel(DETOKENIZE), tokens },
          { signal },
        );
        const prompt = stringOrUndefined(objectAt(body, DETOKENIZE, "a JSON object").prompt);
        if (prompt === undefined) throw protocolError(DETOKENIZE, "the text");
        return prompt;
      },
    };
  }

  async probe(signal: AbortSignal): Promise<ServerFacts> {
    const served = parseModelList(await this.options.transport.getJson("/v1/models", { signal }), MODELS);
    const id = pickServedModel(
      served.map((model) => model.id),
      this.options.model,
      MODELS,
    );
    const contextSize = served.find((model) => model.id === id)?.contextSize;
    if (contextSize === undefined) throw protocolError(MODELS, `the max_model_len of ${id}`);
    this.model = id;
    this.exact = await this.honoursLogprobTokenIds(signal);
    return {
      kind: "vllm",
      model: id,
      contextSize,
      slots: undefined,
      // vLLM serves no chat template over HTTP: LLM_SERVER_CHAT_TEMPLATE names it.
      chatTemplate: undefined,
      bosToken: await this.bosToken(signal),
      eosToken: undefined,
    };
  }

  async readLabels(request: LabelRequest): Promise<LabelReading> {
    const voteIds = [
      ...new Set(request.voteTokens.flatMap((vote) => (vote.id === undefined ? [] : [vote.id]))),
    ];
    const exact = this.exact && voteIds.length > 0 && voteIds.length <= MAX_LOGPROB_TOKEN_IDS;
    const body = vllmLabelBody({
      model: this.requireModel(COMPLETIONS),
      tokens: tokensOf(request.prompt, COMPLETIONS),
      voteIds,
      exact,
      priority: this.priorityOf(request.priority),
    });
    const answer = await this.options.transport.postJson("/v1/completions", body, { signal: request.signal });
    return parseVllmLabelReading(answer, request.voteTokens, exact);
  }

  async complete(request: CompletionRequest): Promise<CompletionResult> {
    const tokens = tokensOf(request.prompt, COMPLETIONS);
    const reader = new CompletionStreamReader(COMPLETIONS, request.onText, tokens.length);
    const headers = conversationHeaders(request.conversationId);
    await this.options.transport.postStream(
      "/v1/completions",
      vllmCompletionBody({
        model: this.requireModel(COMPLETIONS),
        tokens,
        maxTokens: request.maxTokens,
        temperature: request.temperature,
        priority: this.priorityOf(request.priority),
      }),
      { signal: request.signal, onEvent: (event) => reader.onEvent(event), ...(headers ? { headers } : {}) },
    );
    return reader.result();
  }

  close(): void {
    this.options.transport.close();
  }

  private priorityOf(priority: JobPriority | undefined): number | undefined {
    return this.options.priorityScheduling ? vllmPriority(priority) : undefined;
  }

  private requireModel(route: string): string {
    if (this.model === undefined)
      throw new ServerRequestError("protocol", route, `${route} was asked before a probe`);
    return this.model;
  }

  private async tokenize(text: string, addSpecial: boolean, signal: AbortSignal): Promise<number[]> {
    const body = await this.options.transport.postJson(
      "/tokenize",
      { model: this.requireModel(TOKENIZE), prompt: text, add_special_tokens: addSpecial },
      { signal },
    );
    return parseTokenize(body);
  }

  /**
   * Asks for two explicit token ids with `logprobs: 2`. A vLLM that honours logprob_token_ids returns both; one that
   * ignores the field returns its natural top 2, which holds both only if the model happens to rank exactly these
   * two first.
   */
  private async honoursLogprobTokenIds(signal: AbortSignal): Promise<boolean> {
    const tokens = await this.tokenize(PROBE_TEXT, false, signal);
    const ids = [...new Set([...tokens, 0, 1])].slice(0, 2);
    const answer = await this.options.transport.postJson(
      "/v1/completions",
      vllmLabelBody({
        model: this.requireModel(COMPLETIONS),
        tokens,
        voteIds: ids,
        exact: true,
        priority: undefined,
      }),
      { signal },
    );
    const byId = firstPositionLogprobs(answer, COMPLETIONS);
    if (byId === undefined) throw noProbabilities(COMPLETIONS, "Start vLLM with --max-logprobs 20 or more.");
    return ids.every((id) => byId.has(id));
  }

  /** The text of the token vLLM adds in front of a prompt, when it adds one: templates write it as bos_token. */
  private async bosToken(signal: AbortSignal): Promise<string | undefined> {
    const body = await this.options.transport.postJson(
      "/tokenize",
      { model: this.requireModel(TOKENIZE), prompt: "", add_special_tokens: true, return_token_strs: true },
      { signal },
    );
    const strings = arrayOrUndefined(objectAt(body, TOKENIZE, "a JSON object").token_strs);
    return parseTokenize(body).length === 1 ? stringOrUndefined(strings?.[0]) : undefined;
  }
}
