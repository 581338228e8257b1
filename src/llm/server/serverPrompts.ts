import type { ChatTurn } from "../../prompts/prompts.js";
import { DEFAULT_MESSAGE_TOKENS } from "../../text/inputBudget.js";
import type { ServerBackend, ServerPrompt } from "./backend.js";
import { type ChatTemplate, ChatTemplateError, joinPieces, type PromptPiece } from "./chatTemplate.js";
import type { InputMeasure } from "./serverLabels.js";

/*
 * Chat turns to the prompt a server takes, in the best form it accepts:
 * - "tokens": the served model's template rendered by the bot; template pieces tokenised with special tokens
 *   parsed, every turn's text with them off, the ids spliced. Member text can never become a control token.
 * - "text": the same rendering as one string, with every turn's text neutralised (controlTokens.ts).
 * - "messages": the turns themselves, neutralised, for servers that apply their own template.
 */

export type PromptForm = ServerPrompt["kind"];

/** Where the message goes when a classification prompt is rendered once, to split it into prefix and suffix. */
const MESSAGE_MARKER = "\u0000MOODBOT_MESSAGE\u0000";
/** Distinct template pieces are few (role markers between turns); this only bounds a template gone wild. */
const MAX_CACHED_PIECES = 256;

type Tokenizer = NonNullable<ServerBackend["tokenizer"]>;

export interface PromptParts {
  readonly form: PromptForm;
  readonly template: ChatTemplate | undefined;
  readonly tokenizer: ServerBackend["tokenizer"];
  /** Makes control-token strings in a turn's text inert (for the text and messages forms). */
  readonly neutralise: (text: string) => string;
}

/** A classification prompt, resolved once per prompt and server: each message costs only its own tokenisation. */
export interface LabelPrompt {
  /** Names the prompt around the message (its token ids, or its text), for the result caches. */
  readonly identity: readonly (string | number)[];
  /** The prefix's length in tokens (an estimate where the server does not tokenise). */
  readonly prefixTokens: number;
  forMessage(message: string, signal: AbortSignal): Promise<{ prompt: ServerPrompt; measure: InputMeasure }>;
}

export class ServerPrompts {
  /** Token ids of template pieces, which repeat in every prompt (role markers). */
  private readonly pieceTokens = new Map<string, readonly number[]>();

  private constructor(private readonly parts: PromptParts) {}

  /** The first of the backend's prompt forms that can be built: the raw forms need a template. */
  static choose(
    backend: {
      readonly promptForms: ServerBackend["promptForms"];
      readonly tokenizer: Tokenizer | undefined;
    },
    template: ChatTemplate | undefined,
    neutralise: (text: string) => string,
  ): ServerPrompts {
    const form = backend.promptForms.find(
      (candidate) =>
        candidate === "messages" ||
        (template !== undefined && (candidate === "text" || backend.tokenizer !== undefined)),
    );
    if (!form) {
      throw new ChatTemplateError(
        "the server",
        "the model server takes only a raw prompt and exposes no chat template; set LLM_SERVER_CHAT_TEMPLATE to " +
          "the served model's Jinja chat template file",
      );
    }
    return new ServerPrompts({ form, template, tokenizer: backend.tokenizer, neutralise });
  }

  get form(): PromptForm {
    return this.parts.form;
  }

  /** A whole conversation, ending with the assistant's turn opened. */
  async build(turns: readonly ChatTurn[], signal: AbortSignal): Promise<ServerPrompt> {
    const { form } = this.parts;
    if (form === "messages") return { kind: "messages", messages: this.neutralTurns(turns) };
    const pieces = this.render(turns);
    if (form === "text") return { kind: "text", text: this.text(pieces) };
    return { kind: "tokens", tokens: await this.tokens(pieces, signal) };
  }

  /**
   * A classification prompt: `renderTurns` gives the conversation for one input (instruction, few-shot turns,
   * then the input's own user turn), rendered once around a marker and split there, as the in-process classifier
   * does. The input is cut to DEFAULT_MESSAGE_TOKENS tokens.
   */
  async labelPrompt(renderTurns: (input: string) => ChatTurn[], signal: AbortSignal): Promise<LabelPrompt> {
    const { form } = this.parts;
    if (form === "messages") return this.messagesLabelPrompt(renderTurns);
    const [before, after] = splitAtMessage(this.render(renderTurns(MESSAGE_MARKER)));
    if (form === "text") {
      const prefix = this.text(before);
      const suffix = joinPieces(after, this.parts.neutralise);
      return {
        identity: [prefix, suffix],
        prefixTokens: estimateTokens(prefix),
        forMessage: async (message) => {
          const { text, truncated } = truncateByEstimate(message, DEFAULT_MESSAGE_TOKENS);
          const prompt = { kind: "text" as const, text: prefix + this.parts.neutralise(text) + suffix };
          return { prompt, measure: { evaluatedTokens: undefined, truncated } };
        },
      };
    }
    const tokenizer = this.tokenizer();
    const [prefix, suffix] = await Promise.all([this.tokens(before, signal), this.tokens(after, signal)]);
    return {
      identity: [...prefix, ...suffix],
      prefixTokens: prefix.length,
      forMessage: async (message, messageSignal) => {
        const all = message === "" ? [] : await tokenizer.tokenize(message, false, messageSignal);
        const kept = all.slice(0, DEFAULT_MESSAGE_TOKENS);
        const prompt = { kind: "tokens" as const, tokens: [...prefix, ...kept, ...suffix] };
        const measure = { evaluatedTokens: kept.length + suffix.length, truncated: all.length > kept.length };
        return { prompt, measure };
      },
    };
  }

  private messagesLabelPrompt(renderTurns: (input: string) => ChatTurn[]): LabelPrompt {
    const shape = renderTurns(MESSAGE_MARKER);
    const fixedText = shape.map((turn) => turn.text.replace(MESSAGE_MARKER, "")).join("\n");
    return {
      identity: shape.flatMap((turn) => [turn.role, turn.text]),
      prefixTokens: estimateTokens(fixedText),
      forMessage: async (message) => {
        const { text, truncated } = truncateByEstimate(message, DEFAULT_MESSAGE_TOKENS);
        const prompt = { kind: "messages" as const, messages: this.neutralTurns(renderTurns(text)) };
        return { prompt, measure: { evaluatedTokens: undefined, truncated } };
      },
    };
  }

  private render(turns: readonly ChatTurn[]): PromptPiece[] {
    const { template } = this.parts;
    if (!template)
      throw new ChatTemplateError("the server", "a raw prompt needs the served model's chat template");
    return template.render(turns);
  }

  private neutralTurns(turns: readonly ChatTurn[]): ChatTurn[] {
    return turns.map((turn) => ({ role: turn.role, text: this.parts.neutralise(turn.text) }));
  }

  /**
   * One string for servers that take raw text. They tokenise it with the model's own rule for a leading BOS
   * (vLLM's completions and Ollama's raw generate both add it), so a BOS the template wrote would come twice.
   */
  private text(pieces: readonly PromptPiece[]): string {
    const text = joinPieces(pieces, this.parts.neutralise);
    const bos = this.parts.template?.bosToken;
    return bos && text.startsWith(bos) ? text.slice(bos.length) : text;
  }

  private async tokens(pieces: readonly PromptPiece[], signal: AbortSignal): Promise<number[]> {
    const tokenizer = this.tokenizer();
    const parts = await Promise.all(
      pieces.map((piece) =>
        piece.kind === "content"
          ? tokenizer.tokenize(piece.text, false, signal)
          : this.templateTokens(tokenizer, piece.text, signal),
      ),
    );
    return parts.flat();
  }

  private async templateTokens(
    tokenizer: Tokenizer,
    text: string,
    signal: AbortSignal,
  ): Promise<readonly number[]> {
    const cached = this.pieceTokens.get(text);
    if (cached) return cached;
    const tokens = await tokenizer.tokenize(text, true, signal);
    if (this.pieceTokens.size >= MAX_CACHED_PIECES) this.pieceTokens.clear();
    this.pieceTokens.set(text, tokens);
    return tokens;
  }

  private tokenizer(): Tokenizer {
    const { tokenizer } = this.parts;
    if (!tokenizer) throw new Error("the token prompt form was chosen for a server without a tokenizer");
    return tokenizer;
  }
}

/** Splits a rendered classification prompt at the message: prefix pieces and suffix pieces. */
function splitAtMessage(pieces: readonly PromptPiece[]): [PromptPiece[], PromptPiece[]] {
  const index = pieces.findIndex((piece) => piece.kind === "content" && piece.text.includes(MESSAGE_MARKER));
  const holder = pieces[index];
  if (holder?.text.split(MESSAGE_MARKER).length !== 2) {
    throw new ChatTemplateError("the server", "the rendered classification prompt lost the message's place");
  }
  const [before = "", after = ""] = holder.text.split(MESSAGE_MARKER);
  const content = (text: string): PromptPiece[] => (text === "" ? [] : [{ kind: "content", text }]);
  return [
    [...pieces.slice(0, index), ...content(before)],
    [...content(after), ...pieces.slice(index + 1)],
  ];
}

/*
 * Token counts where the server does not tokenise (Ollama, hosted OpenAI-compatible APIs): an estimate that errs
 * high, so budgets built on it still fit. A token of English or code holds three ASCII characters or more; a token
 * of Chinese about one character (three UTF-8 bytes); an emoji takes two tokens or more (four bytes).
 */
const ASCII_CHARS_PER_TOKEN = 3;
const OTHER_BYTES_PER_TOKEN = 2;

function tokenWeight(char: string): number {
  const code = char.codePointAt(0) ?? 0;
  if (code < 0x80) return 1 / ASCII_CHARS_PER_TOKEN;
  const bytes = code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  return bytes / OTHER_BYTES_PER_TOKEN;
}

export function estimateTokens(text: string): number {
  let total = 0;
  for (const char of text) total += tokenWeight(char);
  return Math.ceil(total);
}

/** The longest start of `text` whose estimate fits `maxTokens`, cut between characters. */
export function truncateByEstimate(text: string, maxTokens: number): { text: string; truncated: boolean } {
  let total = 0;
  let end = 0;
  for (const char of text) {
    total += tokenWeight(char);
    if (Math.ceil(total) > maxTokens) return { text: text.slice(0, end), truncated: true };
    end += char.length;
  }
  return { text, truncated: false };
}
