import type { Command } from "../src/discord/context.js";
import type { Task } from "../src/tasks/tasks.js";
import * as analyzeMood from "./analyzeMood.js";
import * as forget from "./forget.js";
import * as help from "./help.js";
import * as memberMood from "./memberMood.js";
import * as mood from "./mood.js";
import * as privacy from "./privacy.js";
import * as sentiment from "./sentiment.js";
import * as settings from "./settings.js";
import { taskCommand } from "./taskCommand.js";

/** The bot's own commands. */
export const commands: readonly Command[] = [
  sentiment,
  analyzeMood,
  memberMood,
  mood,
  forget,
  settings,
  privacy,
  help,
];

/**
 * Every application command, the prompt-defined tasks included (but not those the bot only runs itself, such as
 * moderation's): for the bot and deploy-commands alike.
 */
export function commandsWithTasks(tasks: readonly Task[]): Command[] {
  return [...commands, ...tasks.filter((task) => task.command).map(taskCommand)];
}
