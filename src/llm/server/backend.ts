import type { ChatTurn } from "../../prompts/prompts.js";
import type { ChatStopReason, JobPriority, LabelMethod, ServerKind } from "../llm.js";

/*
 * One inference server's protocol, as the server runtime (ServerLlm) sees it. Each kind (llama.cpp's llama-server,
 * vLLM, Ollama, an OpenAI-compatible API such as LM Studio's) implements it once; everything above it (admission,
 * prompts, labels, readiness) is shared.
 */

/** What the bot learns from a server on its first good contact, and again on every reconnect. */
export interface ServerFacts {
  readonly kind: ServerKind;
  /** The served model's name, as the server reports it (or LLM_SERVER_MODEL). */
  readonly model: string;
  /** Tokens one conversation may use: llama-server's per-slot n_ctx, or the served model's context. */
  readonly contextSize: number;
  /** Requests the server decodes side by side (llama-server's total_slots), when it says. */
  readonly slots: number | undefined;
  /** The served model's chat template (Jinja), when the server exposes it. */
  readonly chatTemplate: string | undefined;
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
}

/**
 * A prompt in the form a server takes. `tokens`: ids spliced from template pieces (special tokens parsed) and user
 * content (parsed as plain text), for servers that tokenise. `text`: a rendered template whose user content had its
 * control-token strings neutralised. `messages`: chat messages for servers that take only those (content
 * neutralised too).
 */
export type ServerPrompt =
  | { readonly kind: "tokens"; readonly tokens: readonly number[] }
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "messages"; readonly messages: readonly ChatTurn[] };

/** A token that votes for a label: its id where the server tokenises, and its text for servers that match strings. */
export interface VoteToken {
  readonly id: number | undefined;
  readonly text: string;
}

export interface LabelRequest {
  readonly prompt: ServerPrompt;
  /** Every token any label is read from (all labels' spellings). */
  readonly voteTokens: readonly VoteToken[];
  readonly signal: AbortSignal;
  /** Sent to servers that schedule by priority (vLLM with --scheduling-policy priority); others ignore it. */
  readonly priority?: JobPriority;
}

/** The next-token log-probabilities of the vote tokens the server returned, indexed like `voteTokens`. */
export interface LabelReading {
  /** One entry per vote token: its log-probability, or undefined when the server did not return it. */
  readonly logprobs: readonly (number | undefined)[];
  readonly method: LabelMethod;
  /** Prompt tokens the server evaluated for this request (the rest came from its prompt cache), when it says. */
  readonly evaluatedPromptTokens: number | undefined;
}

export interface CompletionRequest {
  readonly prompt: ServerPrompt;
  readonly maxTokens: number;
  readonly temperature: number;
  readonly signal: AbortSignal;
  /** Sent to servers that schedule by priority (vLLM with --scheduling-policy priority); others ignore it. */
  readonly priority?: JobPriority;
  /** Called with each piece of text as it streams in. */
  readonly onText: (text: string) => void;
  /** A stable id of the conversation (sent as a header a load balancer can hash on). */
  readonly conversationId: string | undefined;
}

export interface CompletionResult {
  readonly text: string;
  readonly stopReason: ChatStopReason;
  readonly generatedTokens: number;
  /** Prompt tokens the server evaluated (the rest it reused from its prompt cache). */
  readonly evaluatedPromptTokens: number;
}

export interface ServerBackend {
  readonly kind: ServerKind;
  /**
   * Asks an authenticated route what the server serves. Throws ServerRequestError; a wrong key must fail here
   * (a plain /health answers 200 even with a wrong key).
   */
  probe(signal: AbortSignal): Promise<ServerFacts>;
  /** Present when the server tokenises: `special` parses control-token strings (template pieces only). */
  readonly tokenizer?: {
    tokenize(text: string, special: boolean, signal: AbortSignal): Promise<number[]>;
    detokenize(tokens: readonly number[], signal: AbortSignal): Promise<string>;
  };
  /** The prompt forms this server takes, best first. */
  readonly promptForms: readonly ServerPrompt["kind"][];
  readLabels(request: LabelRequest): Promise<LabelReading>;
  complete(request: CompletionRequest): Promise<CompletionResult>;
  /** Frees the connection pool. */
  close(): void;
}
