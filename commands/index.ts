import type { Command } from "./command.js";
import * as sentiment from "./sentiment.js";

export type { Command } from "./command.js";

/** Every slash command, for the bot and for deploy-commands alike. */
export const commands: readonly Command[] = [sentiment];
