import type { MessageMentionOptions } from "discord.js";

/**
 * Every message the bot sends or edits carries this: nothing in it may ping anyone, whatever the model wrote.
 * Sent to Discord as `allowed_mentions: { parse: [] }`.
 */
export const NO_MENTIONS: MessageMentionOptions = Object.freeze({ parse: [] });
