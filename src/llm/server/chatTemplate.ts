import { randomUUID } from "node:crypto";
import { Template } from "@huggingface/jinja";
import { errorMessage, MoodbotError } from "../../platform/errors.js";
import type { ChatTurn } from "../../prompts/prompts.js";

/*
 * The served model's chat template, rendered by the bot itself for servers that take a raw prompt. Every turn's
 * text is rendered as a marker, so the result splits cleanly into what the template wrote (role markers, control
 * tokens: tokenised with special tokens parsed) and what the bot's turns hold (tokenised as plain text, or
 * neutralised). Nothing a member writes can then become a control token, whatever the template does with it.
 */

/** A stretch of a rendered prompt: written by the template, or one turn's own text. */
export interface PromptPiece {
  readonly kind: "template" | "content";
  readonly text: string;
}

/** The template cannot be parsed or rendered, or it drops a turn's text. */
export class ChatTemplateError extends MoodbotError {
  override readonly name = "ChatTemplateError";
  constructor(
    /** Where the template came from: llama-server's /props, or the LLM_SERVER_CHAT_TEMPLATE file. */
    readonly source: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface ChatTemplateOptions {
  /** The Jinja source. */
  readonly template: string;
  /** Names where it came from, for errors. */
  readonly source: string;
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
}

export class ChatTemplate {
  private readonly template: Template;
  /** A fresh nonce per template: no member can type a marker, because no member can guess it. */
  private readonly nonce = randomUUID();

  constructor(private readonly options: ChatTemplateOptions) {
    try {
      this.template = new Template(options.template);
    } catch (error) {
      throw new ChatTemplateError(
        options.source,
        `the chat template from ${options.source} cannot be parsed: ${errorMessage(error)}`,
        { cause: error },
      );
    }
  }

  get bosToken(): string | undefined {
    return this.options.bosToken;
  }

  /**
   * Renders the turns with the generation prompt after them (the assistant's turn opened, nothing in it), and
   * splits the text into template pieces and each turn's text. Adjacent template pieces are joined.
   */
  render(turns: readonly ChatTurn[]): PromptPiece[] {
    const markers = turns.map((_, index) => this.marker(index));
    let rendered: string;
    try {
      rendered = this.template.render({
        messages: turns.map((turn, index) => ({ role: turn.role, content: markers[index] })),
        add_generation_prompt: true,
        bos_token: this.options.bosToken ?? "",
        eos_token: this.options.eosToken ?? "",
      });
    } catch (error) {
      throw new ChatTemplateError(
        this.options.source,
        `the chat template from ${this.options.source} failed to render the prompt: ${errorMessage(error)}`,
        { cause: error },
      );
    }
    return this.split(rendered, turns);
  }

  private marker(index: number): string {
    return `\u27e6moodbot:${this.nonce}:${index}\u27e7`;
  }

  private split(rendered: string, turns: readonly ChatTurn[]): PromptPiece[] {
    const pattern = new RegExp(`\u27e6moodbot:${this.nonce}:(\\d+)\u27e7`, "g");
    const pieces: PromptPiece[] = [];
    const seen = new Set<number>();
    const pushTemplate = (text: string) => {
      if (text === "") return;
      const last = pieces.at(-1);
      if (last?.kind === "template") pieces[pieces.length - 1] = { kind: "template", text: last.text + text };
      else pieces.push({ kind: "template", text });
    };
    let at = 0;
    for (const match of rendered.matchAll(pattern)) {
      const index = Number(match[1]);
      const turn = turns[index];
      if (!turn) throw this.dropped("a marker for a turn that does not exist");
      pushTemplate(rendered.slice(at, match.index));
      if (turn.text !== "") pieces.push({ kind: "content", text: turn.text });
      seen.add(index);
      at = match.index + match[0].length;
    }
    pushTemplate(rendered.slice(at));
    // A template that silently drops a turn (some drop system turns) would give the model a different task.
    const missing = turns.findIndex((_, index) => !seen.has(index));
    if (missing >= 0) throw this.dropped(`the ${turns[missing]?.role} turn number ${missing + 1}`);
    return pieces;
  }

  private dropped(what: string): ChatTemplateError {
    return new ChatTemplateError(
      this.options.source,
      `the chat template from ${this.options.source} did not render ${what} as given; moodbot needs a template that writes each turn's text unchanged`,
    );
  }
}

/** The rendered prompt as one string: pieces joined, with the contents transformed (neutralised) first. */
export function joinPieces(pieces: readonly PromptPiece[], content: (text: string) => string): string {
  return pieces.map((piece) => (piece.kind === "content" ? content(piece.text) : piece.text)).join("");
}
