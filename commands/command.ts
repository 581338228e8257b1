import type {
  ChatInputCommandInteraction,
  MessageContextMenuCommandInteraction,
  RESTPostAPIApplicationCommandsJSONBody,
} from "discord.js";
import type { BotContext } from "../src/discord/context.js";

export type CommandInteraction = ChatInputCommandInteraction | MessageContextMenuCommandInteraction;

/**
 * One application command: its registration data and what it does. Each lives in its own file in commands/: slash
 * commands take a ChatInputCommandInteraction, message context-menu commands a MessageContextMenuCommandInteraction.
 */
export interface Command {
  readonly data: { readonly name: string; toJSON(): RESTPostAPIApplicationCommandsJSONBody };
  execute(interaction: CommandInteraction, context: BotContext): Promise<void>;
}
