import type {
  ChatCompletion,
  JobPriority,
  LabelResult,
  Llm,
  SentimentResult,
  TaskOutcome,
} from "../llm/llm.js";
import { applyNeutralThreshold } from "../llm/neutralThreshold.js";
import type { Outcomes } from "../outcomes/outcomes.js";
import type { Config } from "../platform/config.js";
import type { Logger } from "../platform/logger.js";
import { type EmojiMap, emojiForLabel } from "../platform/sentimentLabels.js";
import {
  type ChatTurn,
  type Prompts,
  renderChatTurns,
  renderUserTurn,
  trimHistory,
} from "../prompts/prompts.js";
import type { HistoryStore, HistoryTurn } from "../store/history.js";
import type { Task } from "../tasks/tasks.js";
import {
  DEFAULT_MESSAGE_TOKENS,
  messageBudgetTokens,
  type ReadingBudget,
  textTaskInputTokens,
} from "../text/inputBudget.js";
import { normaliseInput } from "../text/normaliseInput.js";
import { cleanReply } from "../text/sanitizeReply.js";
import { transcript } from "../transcript/transcript.js";
import { type Language, WORDING } from "../wording/wording.js";

export interface PipelineDeps {
  readonly llm: Llm;
  readonly history: HistoryStore;
  readonly prompts: Prompts;
  /** The prompt-defined tasks the model was loaded with; moderation's is the one named `toxicity`. */
  readonly tasks: readonly Task[];
  readonly config: Config;
  readonly logger: Logger;
  /** Told when a conversation's turns reach the channel's history. */
  readonly outcomes: Outcomes;
}

export type MoodOutcome =
  | { readonly kind: "mood"; readonly result: SentimentResult; readonly emoji: string | undefined }
  | { readonly kind: "skipped"; readonly reason: string };

/** The name of the label task moderation runs (prompts/tasks/toxicity.json). */
export const MODERATION_TASK = "toxicity";

export type ModerationOutcome =
  | { readonly kind: "checked"; readonly result: LabelResult<string> }
  | { readonly kind: "skipped"; readonly reason: string };

export interface ConversationInput {
  readonly channelId: string;
  /** The server the channel is in, or null in a direct message: its data is purged with it. */
  readonly guildId?: string | null;
  readonly authorName: string;
  /** The author's id and their message's, stored with the turn so it can be deleted with them. */
  readonly memberId?: string;
  readonly messageId?: string;
  /** False for a member who opted out: they are answered, and nothing of the exchange is stored or buffered. */
  readonly remember?: boolean;
  readonly botName: string;
  /** The user's text with the bot's mention already stripped. */
  readonly text: string;
  readonly signal?: AbortSignal;
  /** Called with the whole reply generated so far, as it grows: for streaming. */
  readonly onText?: (textSoFar: string) => void;
  /** A server's own persona (system prompt) from /settings, instead of prompts/chat-system.txt. */
  readonly persona?: string;
  /** The caller's child logger, carrying its ids (shard, guild, channel, message); the pipeline's own otherwise. */
  readonly logger?: Logger;
  /** The language of the bot's own notices here (see replyLanguage); English by default. */
  readonly language?: Language;
}

export interface ConversationOutcome {
  /** What to send: never empty. */
  readonly reply: string;
  /** False when the model said nothing usable and `reply` is the bot's own short notice. */
  readonly fromModel: boolean;
  /** Tokens the model generated for it (0 when it was not asked). */
  readonly generatedTokens: number;
  /** The channel's earlier turns the model's prompt held (0 when it was not asked). */
  readonly historyTurns: number;
}

/** Room for the chat template's own tokens around the system prompt and the new turn. */
const PROMPT_MARGIN_TOKENS = 32;

/**
 * The bot's two jobs, independent of Discord: the mood of a text, and a conversation turn with per-channel
 * memory. The Discord listeners and the terminal console both call this.
 */
export class Pipeline {
  private prompts: Prompts;
  private tasks: readonly Task[];

  constructor(private readonly deps: PipelineDeps) {
    this.prompts = deps.prompts;
    this.tasks = deps.tasks;
  }

  /** The chat prompt and tasks from now on (a reload); the model's own prompts are reloaded through the model. */
  usePrompts(prompts: Prompts, tasks: readonly Task[] = this.tasks): void {
    this.prompts = prompts;
    this.tasks = tasks;
  }

  /** Whether moderation can run: its label task was loaded with the model. */
  get canModerate(): boolean {
    return this.moderationTask() !== undefined;
  }

  /**
   * Classifies a message for moderation in one pass on the toxicity task's cached prefix. It is background work
   * shared round-robin per server, shed only after every reaction when the queue overflows.
   */
  async moderate(text: string, options: { group: string; signal?: AbortSignal }): Promise<ModerationOutcome> {
    const task = this.moderationTask();
    if (!task) return { kind: "skipped", reason: "no moderation task" };
    const clean = normaliseInput(text);
    if (clean === "") return { kind: "skipped", reason: "no text" };
    const outcome = await this.deps.llm.runTask(task, clean, {
      priority: "background",
      group: `moderation:${options.group}`,
      shedLast: true,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    // moderationTask() is a label task, which runTask answers with labels or not at all (it throws): only the
    // declared type is wider.
    const { result } = outcome as Extract<TaskOutcome, { kind: "labels" }>;
    return { kind: "checked", result };
  }

  private moderationTask(): Task | undefined {
    return this.tasks.find((task) => task.name === MODERATION_TASK && task.output.kind === "labels");
  }

  async analyzeMood(
    text: string,
    options: { signal?: AbortSignal; priority?: JobPriority; emojis?: EmojiMap; group?: string } = {},
  ): Promise<MoodOutcome> {
    const clean = normaliseInput(text);
    if (clean === "") return { kind: "skipped", reason: "no text" };
    const { emojis = this.deps.config.moodEmojis, ...classify } = options;
    const measured = await this.deps.llm.classifySentiment(clean, classify);
    const result = applyNeutralThreshold(measured, this.deps.config.sentiment.neutralThreshold);
    return { kind: "mood", result, emoji: emojiForLabel(emojis, result.label) };
  }

  /** Runs a prompt-defined task (a slash command from prompts/tasks) as interactive model work. */
  runTask(task: Task, input: string, options: { signal?: AbortSignal } = {}): Promise<TaskOutcome> {
    return this.deps.llm.runTask(task, input, options);
  }

  /** The last `count` turns a channel remembers, as the transcript a channel task reads. */
  async recentTranscript(channelId: string, count: number, botName: string): Promise<string> {
    const turns = (await this.deps.history.get(channelId)).slice(-count);
    return transcript(turns.map((turn) => ({ author: turn.author ?? botName, text: turn.text })));
  }

  /** Clears a channel's conversation history (the /forget command). */
  forget(channelId: string): Promise<void> {
    return this.deps.history.clear(channelId);
  }

  /** The room a mention's message and its files have in the chat prompt, so history and the reply keep theirs. */
  messageBudget(): ReadingBudget {
    const { llm } = this.deps;
    return { tokens: messageBudgetTokens(llm.contextSize), meter: llm };
  }

  /** The room a task's input has: a text task's beside its answer, a label task's what its classifier reads. */
  taskInputBudget(task: Task): ReadingBudget {
    const { llm } = this.deps;
    const tokens =
      task.output.kind === "text"
        ? textTaskInputTokens(llm.contextSize, task.output.maxTokens)
        : DEFAULT_MESSAGE_TOKENS;
    return { tokens, meter: llm };
  }

  /** A conversation turn: the prompt from the channel's history, the reply streamed, and both turns stored. */
  async converse(input: ConversationInput): Promise<ConversationOutcome> {
    const { llm } = this.deps;
    const text = normaliseInput(input.text);
    const wording = WORDING[input.language ?? "en"];
    if (text === "")
      return { reply: wording.emptyMention, fromModel: false, generatedTokens: 0, historyTurns: 0 };

    // The files were read within this budget already (messageBudget); this cut holds it for any other caller.
    const message = await llm.truncateToTokens(text, messageBudgetTokens(llm.contextSize), input.signal);
    const { turns, historyTurns } = await this.chatPrompt(input, message);
    const userTurn: HistoryTurn = {
      role: "user",
      text: message,
      author: input.authorName,
      at: Date.now(),
      ...ids(input),
    };
    const completion = await this.generateReply(input, turns, userTurn);
    const reply = cleanReply(completion.text);
    (input.logger ?? this.deps.logger).debug(
      {
        channelId: input.channelId,
        historyTurns,
        customPersona: input.persona !== undefined,
        generatedTokens: completion.generatedTokens,
        evaluatedPromptTokens: completion.evaluatedPromptTokens,
        stopReason: completion.stopReason,
        replyChars: reply.length,
      },
      "chat turn done",
    );
    if (reply === "") {
      await this.store(input, [userTurn]);
      return {
        reply: wording.emptyReply,
        fromModel: false,
        generatedTokens: completion.generatedTokens,
        historyTurns,
      };
    }
    await this.store(input, [userTurn, { role: "assistant", text: reply, at: Date.now(), ...ids(input) }]);
    return { reply, fromModel: true, generatedTokens: completion.generatedTokens, historyTurns };
  }

  /** Stores an exchange in the channel's history, unless the member opted out. */
  private async store(
    input: ConversationInput,
    turns: readonly HistoryTurn[],
    interrupted = false,
  ): Promise<void> {
    if (input.remember === false) return;
    await this.deps.history.append(input.channelId, turns, input.guildId ?? null);
    this.deps.outcomes.emit({
      kind: "stored",
      channelId: input.channelId,
      messageId: input.messageId ?? null,
      turns: turns.length,
      interrupted,
    });
  }

  /**
   * The chat prompt: the persona and the new message always, and as much of the channel's history as fits the
   * context once the reply has its room.
   */
  private async chatPrompt(input: ConversationInput, message: string) {
    const { llm, history, config } = this.deps;
    const { prompts } = this;
    const past = (await history.get(input.channelId)).map(toChatTurn);
    const personaPrompts = input.persona === undefined ? prompts : { ...prompts, chatSystem: input.persona };
    const [persona, newTurn] = renderChatTurns(personaPrompts, {
      botName: input.botName,
      history: [],
      authorName: input.authorName,
      message,
    });
    if (!persona || !newTurn)
      throw new Error("the chat prompt must render a system turn and the user's turn");
    const { signal } = input;
    const [personaTokens, newTurnTokens] = await Promise.all([
      llm.countTokens(persona.text, signal),
      llm.countTokens(newTurn.text, signal),
    ]);
    const kept = await trimHistory(past, {
      maxTurns: config.chat.historyTurns,
      maxTokens:
        llm.contextSize - config.chat.maxReplyTokens - personaTokens - newTurnTokens - PROMPT_MARGIN_TOKENS,
      countTokens: (t) => llm.countTokens(t, signal),
    });
    return { turns: [persona, ...kept, newTurn], historyTurns: kept.length };
  }

  /** Streams the reply; when it fails or is interrupted, the turn so far is kept before the error goes on. */
  private async generateReply(
    input: ConversationInput,
    turns: readonly ChatTurn[],
    userTurn: HistoryTurn,
  ): Promise<ChatCompletion> {
    const { llm, config } = this.deps;
    let soFar = "";
    try {
      return await llm.generateChat(turns, {
        channelKey: input.channelId,
        onText: (piece: string) => {
          soFar += piece;
          input.onText?.(soFar);
        },
        maxTokens: config.chat.maxReplyTokens,
        temperature: config.chat.temperature,
        ...(input.signal ? { signal: input.signal } : {}),
      });
    } catch (error) {
      await this.keepInterruptedTurn(input, userTurn, soFar, error);
      throw error;
    }
  }

  /**
   * A turn that was cut short (shutdown, a queued mention the model never reached, an error) is still remembered:
   * the user's message, and whatever part of the reply was already produced. The original error is what the
   * caller sees, so a failed write is only logged.
   */
  private async keepInterruptedTurn(
    input: ConversationInput,
    userTurn: HistoryTurn,
    partialReply: string,
    cause: unknown,
  ): Promise<void> {
    const partial = cleanReply(partialReply);
    const turns: HistoryTurn[] =
      partial === ""
        ? [userTurn]
        : [userTurn, { role: "assistant", text: partial, at: Date.now(), ...ids(input) }];
    const { channelId } = input;
    const logger = input.logger ?? this.deps.logger;
    try {
      await this.store(input, turns, true);
      logger.debug({ channelId, partialReplyChars: partial.length, err: cause }, "interrupted turn kept");
    } catch (error) {
      logger.warn({ channelId, err: error }, "interrupted turn could not be kept");
    }
  }
}

/** The ids a turn of this exchange carries, both the user's turn and the reply to it. */
function ids(input: ConversationInput): Pick<HistoryTurn, "memberId" | "messageId"> {
  return {
    ...(input.memberId === undefined ? {} : { memberId: input.memberId }),
    ...(input.messageId === undefined ? {} : { messageId: input.messageId }),
  };
}

function toChatTurn(turn: HistoryTurn): ChatTurn {
  return turn.role === "user"
    ? renderUserTurn(turn.author ?? "someone", turn.text)
    : { role: "assistant", text: turn.text };
}
