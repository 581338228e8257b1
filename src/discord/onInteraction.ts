import { ApplicationCommandType, type Interaction, MessageFlags } from "discord.js";
import type { CommandInteraction } from "../../commands/command.js";
import type { Command } from "../../commands/index.js";
import { errorMessage, JobCancelledError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { BotContext } from "./context.js";
import { NO_MENTIONS } from "./send.js";

export const COMMAND_ERROR_NOTICE = "Sorry, that didn't work. Please try again in a moment.";
export const SHUTTING_DOWN_NOTICE = "I'm restarting right now. Please try again in a minute.";

export async function onInteraction(
  interaction: Interaction,
  commands: ReadonlyMap<string, Command>,
  context: BotContext,
): Promise<void> {
  if (!interaction.isChatInputCommand() && !interaction.isMessageContextMenuCommand()) return;
  const log = context.logger.child({
    shardId: interaction.guild?.shardId ?? 0,
    guildId: interaction.guildId,
    channelId: interaction.channelId,
    interactionId: interaction.id,
    command: interaction.commandName,
  });
  const command = commands.get(interaction.commandName);
  const expectedType = interaction.isChatInputCommand()
    ? ApplicationCommandType.ChatInput
    : ApplicationCommandType.Message;
  if (!command || (command.data.toJSON().type ?? ApplicationCommandType.ChatInput) !== expectedType) {
    log.warn("unknown command: deploy-commands may be out of date");
    await respondWithError(interaction, "I don't know that command. It may have been removed.", log);
    return;
  }
  try {
    await command.execute(interaction, { ...context, logger: log });
    log.debug("command done");
  } catch (error) {
    const cancelled = error instanceof JobCancelledError;
    if (cancelled) log.debug({ reason: error.reason }, "command cancelled");
    else log.error({ err: error }, "command failed");
    await respondWithError(interaction, cancelled ? SHUTTING_DOWN_NOTICE : COMMAND_ERROR_NOTICE, log);
  }
}

/** The one place that tells a user a command failed: a short ephemeral notice, never a stack trace. */
async function respondWithError(interaction: CommandInteraction, content: string, log: Logger) {
  try {
    if (interaction.deferred || interaction.replied) {
      await interaction.editReply({ content, allowedMentions: NO_MENTIONS });
    } else {
      await interaction.reply({ content, flags: MessageFlags.Ephemeral, allowedMentions: NO_MENTIONS });
    }
  } catch (error) {
    // Typically the interaction token expired (15 minutes) or the interaction was already answered.
    log.warn({ err: errorMessage(error) }, "could not send the error notice");
  }
}
