import * as analyzeMood from "./analyzeMood.js";
import type { Command } from "./command.js";
import * as forget from "./forget.js";
import * as help from "./help.js";
import * as sentiment from "./sentiment.js";

export type { Command } from "./command.js";

/** Every application command, for the bot and for deploy-commands alike. */
export const commands: readonly Command[] = [sentiment, analyzeMood, forget, help];
