import { basename } from "node:path";
import { z } from "zod";
import { ServerRequestError } from "../../platform/errors.js";
import type { ChatStopReason } from "../llm.js";
import type {
  CompletionRequest,
  CompletionResult,
  LabelReading,
  LabelRequest,
  ServerBackend,
  ServerFacts,
  ServerPrompt,
} from "./backend.js";
import type { ServerHttp } from "./http.js";

/*
 * llama.cpp's llama-server (tools/server at the bundle's commit de3ff81): its own routes, not the OpenAI ones, because
 * only /completion takes token ids, a sampler chain and returns post-sampling probabilities.
 */

/** GET /props: authenticated whenever --api-key is set (only /health and /v1/health are public). */
const Props = z.object({
  default_generation_settings: z.object({ n_ctx: z.number().int().positive() }),
  total_slots: z.number().int().optional(),
  model_alias: z.string().optional(),
  model_path: z.string().optional(),
  chat_template: z.string().optional(),
  bos_token: z.string().optional(),
  eos_token: z.string().optional(),
});

const Tokenized = z.object({ tokens: z.array(z.number().int()) });
const Detokenized = z.object({ content: z.string() });

const Timings = z.object({ prompt_n: z.number().int().nonnegative() });

/** POST /completion with post_sampling_probs: one entry per generated token, each with its top_probs. */
const LabelCompletion = z.object({
  completion_probabilities: z
    .array(z.object({ top_probs: z.array(z.object({ id: z.number().int(), prob: z.number() })) }))
    .min(1),
  timings: Timings.optional(),
});

const StreamPiece = z.object({ content: z.string().optional(), stop: z.boolean().optional() });
const StreamFinal = z.object({
  stop: z.literal(true),
  stop_type: z.string(),
  tokens_predicted: z.number().int().nonnegative(),
  timings: Timings,
});
const StreamError = z.object({ error: z.object({ message: z.string().optional() }).passthrough() });

/**
 * Far above any logit spread: every vote token outranks every other token, so the top_k sampler (k = the vote
 * tokens) keeps exactly them, and the bias, equal for all, cancels in their softmax.
 */
const VOTE_BIAS = 100;

/** The in-process runtime's sampling (src/llm/inProcess/chat.ts): top-p 0.9, no min-p, a 1.1 penalty over 64 tokens. */
const CHAT_SAMPLING = { top_p: 0.9, min_p: 0, repeat_penalty: 1.1, repeat_last_n: 64 } as const;

const STOP_REASONS: Readonly<Record<string, ChatStopReason>> = {
  eos: "eogToken",
  limit: "maxTokens",
  word: "stopTrigger",
};

/** Sent with a conversation's requests so that a load balancer in front of several servers can hash on it. */
export const CONVERSATION_HEADER = "X-Moodbot-Conversation";

export class LlamaCppBackend implements ServerBackend {
  readonly kind = "llama.cpp" as const;
  readonly promptForms = ["tokens", "text"] as const;

  readonly tokenizer = {
    tokenize: async (text: string, special: boolean, signal: AbortSignal): Promise<number[]> => {
      const body = { content: text, add_special: false, parse_special: special };
      const answer = await this.http.postJson("/tokenize", body, { signal });
      return parse(Tokenized, answer, "POST /tokenize").tokens;
    },
    detokenize: async (tokens: readonly number[], signal: AbortSignal): Promise<string> => {
      const answer = await this.http.postJson("/detokenize", { tokens }, { signal });
      return parse(Detokenized, answer, "POST /detokenize").content;
    },
  };

  constructor(private readonly http: ServerHttp) {}

  async probe(signal: AbortSignal): Promise<ServerFacts> {
    const props = parse(Props, await this.http.getJson("/props", { signal }), "GET /props");
    return {
      kind: this.kind,
      model: modelName(props),
      contextSize: props.default_generation_settings.n_ctx,
      slots: props.total_slots !== undefined && props.total_slots > 0 ? props.total_slots : undefined,
      chatTemplate: props.chat_template || undefined,
      bosToken: props.bos_token || undefined,
      eosToken: props.eos_token || undefined,
    };
  }

  /**
   * One token on the cached prefix. The vote tokens get an equal +100 bias and the only sampler is top-k with k =
   * their count, so the probabilities after sampling are the softmax over their raw logits alone: exact, with no
   * temperature, min-p or top-p in the way (the default chain distorts them).
   */
  async readLabels(request: LabelRequest): Promise<LabelReading> {
    const route = "POST /completion";
    // Two labels may share a token ("n" for negative and neutral): its bias is given once, or it would be doubled.
    const ids = [
      ...new Set(request.voteTokens.flatMap((token) => (token.id === undefined ? [] : [token.id]))),
    ];
    if (ids.length === 0) {
      throw new ServerRequestError(
        "unsupported",
        route,
        `${route}: no vote token has an id in the served model's vocabulary`,
      );
    }
    const body = {
      prompt: promptBody(request.prompt, route),
      n_predict: 1,
      cache_prompt: true,
      stream: false,
      logit_bias: ids.map((id) => [id, VOTE_BIAS]),
      samplers: ["top_k"],
      top_k: ids.length,
      n_probs: ids.length,
      post_sampling_probs: true,
      // Leaves out the echo of the prompt and of the settings: this request runs for every message.
      response_fields: ["completion_probabilities", "timings"],
    };
    const answer = parse(
      LabelCompletion,
      await this.http.postJson("/completion", body, { signal: request.signal }),
      route,
    );
    const probabilities = new Map<number, number>();
    for (const { id, prob } of answer.completion_probabilities[0]?.top_probs ?? []) {
      if (!ids.includes(id)) {
        throw new ServerRequestError(
          "protocol",
          route,
          `${route} returned token ${id}, which is not a vote token`,
        );
      }
      probabilities.set(id, prob);
    }
    return {
      // A vote token missing here rounded to probability 0 (llama-server drops zeros): the caller sees undefined.
      logprobs: request.voteTokens.map((token) => {
        const probability = token.id === undefined ? undefined : probabilities.get(token.id);
        return probability === undefined ? undefined : Math.log(probability);
      }),
      method: "logits",
      evaluatedPromptTokens: answer.timings?.prompt_n,
    };
  }

  /**
   * Streams a reply. Aborting closes the request, and llama-server stops generating. A stream that ends without
   * its last event (the server died) throws ServerRequestError("unreachable"): the text so far is what `onText`
   * was given.
   */
  async complete(request: CompletionRequest): Promise<CompletionResult> {
    const route = "POST /completion";
    const body = {
      prompt: promptBody(request.prompt, route),
      stream: true,
      n_predict: request.maxTokens,
      temperature: request.temperature,
      ...CHAT_SAMPLING,
      cache_prompt: true,
    };
    let text = "";
    let final: z.infer<typeof StreamFinal> | undefined;
    await this.http.postStream("/completion", body, {
      signal: request.signal,
      ...(request.conversationId === undefined
        ? {}
        : { headers: { [CONVERSATION_HEADER]: request.conversationId } }),
      onEvent: (event) => {
        const failure = StreamError.safeParse(event);
        if (failure.success) {
          const said = failure.data.error.message ?? "no message";
          throw new ServerRequestError("http", route, `${route} failed mid-reply: ${said}`);
        }
        const piece = parse(StreamPiece, event, route);
        if (piece.content) {
          text += piece.content;
          request.onText(piece.content);
        }
        if (piece.stop) final = parse(StreamFinal, event, route);
      },
    });
    if (!final) {
      throw new ServerRequestError(
        "unreachable",
        route,
        `${route}: the stream ended before its last event (did the server stop?)`,
      );
    }
    const stopReason = STOP_REASONS[final.stop_type];
    if (!stopReason) {
      throw new ServerRequestError(
        "protocol",
        route,
        `${route} ended with an unknown stop_type "${final.stop_type}"`,
      );
    }
    return {
      text,
      stopReason,
      generatedTokens: final.tokens_predicted,
      evaluatedPromptTokens: final.timings.prompt_n,
    };
  }

  close(): void {
    this.http.close();
  }
}

/** The --alias when one is set; else the file's name (llama-server reports the model's path as its alias). */
function modelName(props: z.infer<typeof Props>): string {
  const alias = props.model_alias;
  if (alias && alias !== props.model_path) return alias;
  const path = props.model_path || alias;
  return path ? basename(path) : "llama-server";
}

function promptBody(prompt: ServerPrompt, route: string): number[] | string {
  switch (prompt.kind) {
    case "tokens":
      return [...prompt.tokens];
    case "text":
      return prompt.text;
    case "messages":
      throw new ServerRequestError("unsupported", route, `${route} takes tokens or text, not chat messages`);
  }
}

function parse<T>(schema: z.ZodType<T>, value: unknown, route: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    const where = result.error.issues[0]?.path.join(".") || "the body";
    throw new ServerRequestError("protocol", route, `${route} answered in an unexpected shape (at ${where})`);
  }
  return result.data;
}
