import { readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { errorMessage, MoodbotError } from "../platform/errors.js";
import { DEFAULT_PROMPTS_DIR } from "../platform/promptsDir.js";
import { SENTIMENT_LABELS, type SentimentLabel } from "../platform/sentimentLabels.js";

/**
 * Prompts are data in prompts/; these pure functions turn them into chat turns. Turns hold plain text only:
 * the model layer renders them with the model's own chat wrapper, which tokenises every turn's text with special
 * tokens off, so nothing a user types can become a control token.
 */

export interface ChatTurn {
  readonly role: "system" | "user" | "assistant";
  readonly text: string;
}

export interface SentimentExample {
  readonly label: SentimentLabel;
  readonly message: string;
}

export interface Prompts {
  readonly sentimentSystem: string;
  readonly sentimentUser: string;
  readonly sentimentExamples: readonly SentimentExample[];
  readonly chatSystem: string;
}

/** Where the message goes in the sentiment user turn. */
const MESSAGE_SLOT = "{{message}}";

/** A prompt file is missing or invalid; the message names the file and the problem. */
export class PromptFileError extends MoodbotError {
  override readonly name = "PromptFileError";
  constructor(
    readonly file: string,
    problem: string,
    options?: ErrorOptions,
  ) {
    super(`The prompt file ${file} ${problem}. Fix the file and load the prompts again.`, options);
  }
}

/** Reads and checks the prompt files in `directory`; throws PromptFileError naming the first bad one. */
export function loadPrompts(directory = DEFAULT_PROMPTS_DIR): Prompts {
  const shown = (name: string) => {
    const path = join(directory, name);
    const fromHere = relative(process.cwd(), path);
    return fromHere.startsWith("..") ? path : fromHere;
  };
  const read = (name: string) => {
    let text: string;
    try {
      text = readFileSync(join(directory, name), "utf8").replace(/\r\n/g, "\n").trim();
    } catch (error) {
      throw new PromptFileError(shown(name), `cannot be read (${errorMessage(error)})`, { cause: error });
    }
    if (text === "") throw new PromptFileError(shown(name), "is empty");
    return text;
  };
  const sentimentUser = read("sentiment-user.txt");
  if (sentimentUser.split(MESSAGE_SLOT).length !== 2) {
    throw new PromptFileError(shown("sentiment-user.txt"), `must contain ${MESSAGE_SLOT} exactly once`);
  }
  let sentimentExamples: SentimentExample[];
  try {
    sentimentExamples = parseSentimentExamples(read("sentiment-examples.txt"));
  } catch (error) {
    if (error instanceof PromptFileError) throw error;
    throw new PromptFileError(shown("sentiment-examples.txt"), `is invalid: ${errorMessage(error)}`);
  }
  return {
    sentimentSystem: read("sentiment-system.txt"),
    sentimentUser,
    sentimentExamples,
    chatSystem: read("chat-system.txt"),
  };
}

/** Parses "label<TAB>message" lines; `#` lines and blank lines are comments. */
export function parseSentimentExamples(source: string): SentimentExample[] {
  const examples: SentimentExample[] = [];
  for (const [index, raw] of source.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const tab = line.indexOf("\t");
    const label = line.slice(0, tab).trim();
    if (tab < 0 || !(SENTIMENT_LABELS as readonly string[]).includes(label)) {
      throw new Error(
        `sentiment-examples.txt line ${index + 1}: expected "label<TAB>message" with a known label`,
      );
    }
    examples.push({ label: label as SentimentLabel, message: line.slice(tab + 1).trim() });
  }
  return examples;
}

/**
 * The sentiment conversation: instruction, few-shot turns, then the message's own user turn. Everything before
 * the message is a fixed prefix the model evaluates once; `messageSlot` marks where each message goes.
 */
export function renderSentimentTurns(prompts: Prompts, message: string): ChatTurn[] {
  const turns: ChatTurn[] = [{ role: "system", text: prompts.sentimentSystem }];
  for (const example of prompts.sentimentExamples) {
    turns.push({ role: "user", text: fillSlot(prompts.sentimentUser, MESSAGE_SLOT, example.message) });
    turns.push({ role: "assistant", text: example.label });
  }
  turns.push({ role: "user", text: fillSlot(prompts.sentimentUser, MESSAGE_SLOT, message) });
  return turns;
}

export interface ChatPromptInput {
  readonly botName: string;
  /** Earlier turns of this channel, oldest first, already trimmed to the budget. */
  readonly history: readonly ChatTurn[];
  readonly authorName: string;
  readonly message: string;
}

export function renderChatTurns(prompts: Prompts, input: ChatPromptInput): ChatTurn[] {
  return [
    { role: "system", text: fillSlot(prompts.chatSystem, "{{botName}}", input.botName) },
    ...input.history,
    renderUserTurn(input.authorName, input.message),
  ];
}

/** A user's line as the model sees it: the speaker's name, so it can follow a channel with many people. */
export function renderUserTurn(authorName: string, message: string): ChatTurn {
  return { role: "user", text: `${oneLine(authorName)}: ${message}` };
}

/** Split and join rather than String.replace, so `$&` and friends in user text stay literal. */
function fillSlot(template: string, slot: string, value: string): string {
  return template.split(slot).join(value);
}

const oneLine = (text: string) => text.replace(/\s+/g, " ").trim() || "someone";

/** Tokens each turn costs beyond its text: the chat template's role markers and newlines. */
export const TURN_OVERHEAD_TOKENS = 6;

/**
 * Keeps the newest turns that fit both a turn count and a token budget, so the prompt never overflows the
 * context. Never starts the kept history on an assistant turn: a reply without its question confuses the model.
 * The newest `maxTurns` turns are counted side by side: on a model server each count is a request.
 */
export async function trimHistory<T extends { readonly role: string; readonly text: string }>(
  turns: readonly T[],
  limits: {
    readonly maxTurns: number;
    readonly maxTokens: number;
    readonly countTokens: (text: string) => number | Promise<number>;
  },
): Promise<T[]> {
  const candidates = turns.slice(Math.max(0, turns.length - limits.maxTurns));
  const costs = await Promise.all(
    candidates.map(async (turn) => (await limits.countTokens(turn.text)) + TURN_OVERHEAD_TOKENS),
  );
  const kept: T[] = [];
  let used = 0;
  for (let index = candidates.length - 1; index >= 0; index--) {
    const turn = candidates[index];
    const cost = costs[index];
    if (turn === undefined || cost === undefined || used + cost > limits.maxTokens) break;
    used += cost;
    kept.unshift(turn);
  }
  while (kept[0]?.role === "assistant") kept.shift();
  return kept;
}
