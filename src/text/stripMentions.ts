/** Removes mentions of the bot (`<@id>` and the legacy `<@!id>`) and tidies the whitespace they leave. */
export function stripBotMention(content: string, botId: string): string {
  const escaped = botId.replace(/[^0-9]/g, "");
  return content
    .replace(new RegExp(`<@!?${escaped}>`, "g"), " ")
    .replace(/[ \t]{2,}/g, " ")
    .trim();
}
