import { type ChatHistoryItem, type ChatWrapper, LlamaChat, type LlamaContextSequence } from "node-llama-cpp";
import type { ChatTurn } from "../prompts.js";
import { toChatHistory } from "./chatHistory.js";

export interface ChatOptions {
  readonly maxTokens: number;
  readonly temperature: number;
  readonly signal?: AbortSignal;
  /** Called with each piece of reply text as it is generated. */
  readonly onText?: (text: string) => void;
}

export interface ChatCompletion {
  readonly text: string;
  readonly stopReason: string;
  readonly generatedTokens: number;
  /** Prompt tokens the model had to evaluate: the whole prompt when cold, only the new turns when warm. */
  readonly evaluatedPromptTokens: number;
}

/**
 * Runs chat turns on the chat sequence through the model's own chat wrapper (QwenChatWrapper for Qwen models),
 * which tokenises every turn's text as plain text. LlamaChat reuses whatever prefix of the sequence already
 * matches the new history, so a follow-up in the same channel evaluates only the new turns.
 */
export class ChatRunner {
  private readonly chat: LlamaChat;

  constructor(private readonly sequence: LlamaContextSequence) {
    this.chat = new LlamaChat({ contextSequence: sequence });
  }

  get chatWrapper(): ChatWrapper {
    return this.chat.chatWrapper;
  }

  get wrapperName(): string {
    return this.chat.chatWrapper.wrapperName;
  }

  async generate(turns: readonly ChatTurn[], options: ChatOptions): Promise<ChatCompletion> {
    options.signal?.throwIfAborted();
    const history: ChatHistoryItem[] = [...toChatHistory(turns), { type: "model", response: [] }];
    let generatedTokens = 0;
    const meter = this.sequence.tokenMeter;
    // Input tokens include each generated token fed back in; subtract those to get the prompt's share.
    const inputBefore = meter.usedInputTokens;
    const result = await this.chat.generateResponse(history, {
      maxTokens: options.maxTokens,
      temperature: options.temperature,
      topP: 0.9,
      repeatPenalty: { penalty: 1.1 },
      trimWhitespaceSuffix: true,
      onToken: (tokens) => {
        generatedTokens += tokens.length;
      },
      ...(options.onText ? { onTextChunk: options.onText } : {}),
      ...(options.signal ? { signal: options.signal, stopOnAbortSignal: false } : {}),
    });
    return {
      text: result.response,
      stopReason: result.metadata.stopReason,
      generatedTokens,
      evaluatedPromptTokens: Math.max(
        0,
        meter.usedInputTokens - inputBefore - Math.max(0, generatedTokens - 1),
      ),
    };
  }

  /** Forgets the evaluated state, so the next turn starts cold. */
  clear(): Promise<void> {
    return this.sequence.clearHistory();
  }

  dispose(): void {
    this.chat.dispose();
  }
}
