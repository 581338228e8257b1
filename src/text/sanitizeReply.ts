/**
 * Cleans model output before it reaches Discord: chat-template control tokens and <think> blocks are removed, and
 * mass mentions are made inert in the text itself. Every send also carries `allowed_mentions: { parse: [] }`;
 * this is the second guard, so a quoted "@everyone" never even looks like a ping.
 */
export function sanitizeReply(text: string): string {
  return text
    .replace(/<think>[\s\S]*?(<\/think>|$)/gi, "")
    .replace(/<\|[a-z_]+\|>/gi, "")
    .replace(/@(everyone|here)\b/gi, "@\u200b$1")
    .trim();
}
