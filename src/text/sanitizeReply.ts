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

/** The longest reply the bot sends: at most three Discord messages. CHAT_MAX_TOKENS normally stops well before. */
export const MAX_REPLY_CHARS = 5700;

/** Caps a reply's length at a word boundary where one is near, marking the cut. */
export function capReply(text: string, max = MAX_REPLY_CHARS): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max - 1);
  const space = cut.lastIndexOf(" ");
  const end = space > max * 0.9 ? space : cut.length;
  const code = cut.charCodeAt(end - 1);
  // Never leave half a surrogate pair at the cut.
  const safeEnd = code >= 0xd800 && code <= 0xdbff ? end - 1 : end;
  return `${cut.slice(0, safeEnd).trimEnd()}…`;
}

/** Model text made fit to show and to keep: cleaned, then capped. */
export function cleanReply(text: string): string {
  return capReply(sanitizeReply(text));
}
