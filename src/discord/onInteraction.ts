import { ApplicationCommandType, type ButtonInteraction, type Interaction } from "discord.js";
import { JobCancelledError, ModelUnavailableError } from "../platform/errors.js";
import type { Logger } from "../platform/logger.js";
import type { Wording } from "../wording/wording.js";
import { type BotContext, type Command, type CommandInteraction, parseButtonId } from "./context.js";
import { inForceFor } from "./inForce.js";
import { MODERATION_BUTTONS, onModerationButton } from "./moderation.js";
import { answerInteraction } from "./send.js";

export async function onInteraction(
  interaction: Interaction,
  commands: ReadonlyMap<string, Command>,
  context: BotContext,
): Promise<void> {
  if (interaction.isButton()) return onButton(interaction, commands, context);
  if (!interaction.isChatInputCommand() && !interaction.isContextMenuCommand()) return;
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
    : interaction.isUserContextMenuCommand()
      ? ApplicationCommandType.User
      : ApplicationCommandType.Message;
  if (!command || (command.data.toJSON().type ?? ApplicationCommandType.ChatInput) !== expectedType) {
    log.warn("unknown command: deploy-commands may be out of date");
    await respondWithError(interaction, (wording) => wording.unknownCommand, context, log);
    return;
  }
  try {
    await command.execute(interaction, { ...context, logger: log });
    log.debug("command done");
  } catch (error) {
    if (error instanceof ModelUnavailableError) {
      // The operator's matter, told in the log and /readyz; the member gets a short notice.
      log.info({ cause: error.cause }, "command not answered: the model is not ready");
      await respondWithError(interaction, (wording) => wording.modelUnavailable, context, log);
      return;
    }
    const cancelled = error instanceof JobCancelledError;
    if (cancelled) log.debug({ reason: error.reason }, "command cancelled");
    else log.error({ err: error }, "command failed");
    await respondWithError(
      interaction,
      (wording) => (cancelled ? wording.shuttingDown : wording.commandError),
      context,
      log,
    );
  }
}

/**
 * A click on a button: routed by the custom id's first part to the command that posted it, or to moderation for
 * an alert's buttons.
 */
async function onButton(
  interaction: ButtonInteraction,
  commands: ReadonlyMap<string, Command>,
  context: BotContext,
): Promise<void> {
  const { command: name, action } = parseButtonId(interaction.customId);
  const log = context.logger.child({
    shardId: interaction.guild?.shardId ?? 0,
    guildId: interaction.guildId,
    channelId: interaction.channelId,
    interactionId: interaction.id,
    command: name,
    button: action,
  });
  const handler = name === MODERATION_BUTTONS ? onModerationButton : commands.get(name)?.button;
  try {
    if (!handler) {
      log.warn("button of an unknown command: it was posted before an update");
      await respondWithError(interaction, (wording) => wording.unknownCommand, context, log);
      return;
    }
    await handler(interaction, { ...context, logger: log });
    log.debug("button done");
  } catch (error) {
    log.error({ err: error }, "button failed");
    await respondWithError(interaction, (wording) => wording.commandError, context, log);
  }
}

/**
 * The one place that tells a user a command failed: a short ephemeral notice, never a stack trace, in the
 * language of the channel (the settings read is cached, and falls back to the defaults when the store is away).
 */
async function respondWithError(
  interaction: CommandInteraction | ButtonInteraction,
  notice: (wording: Wording) => string,
  context: BotContext,
  log: Logger,
) {
  try {
    const { wording } = await inForceFor(interaction, context);
    await answerInteraction(interaction, notice(wording));
  } catch (error) {
    // Typically the interaction token expired (15 minutes) or the interaction was already answered.
    log.warn({ err: error }, "could not send the error notice");
  }
}
