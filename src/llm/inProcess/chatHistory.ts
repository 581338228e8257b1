import type { ChatHistoryItem } from "node-llama-cpp";
import type { ChatTurn } from "../../prompts/prompts.js";

/** Converts prompt turns to node-llama-cpp chat history; the chat wrapper tokenises turn text as plain text. */
export function toChatHistory(turns: readonly ChatTurn[]): ChatHistoryItem[] {
  return turns.map((turn): ChatHistoryItem => {
    if (turn.role === "system") return { type: "system", text: turn.text };
    if (turn.role === "user") return { type: "user", text: turn.text };
    return { type: "model", response: [turn.text] };
  });
}
