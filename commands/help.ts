import {
  ApplicationCommandType,
  type ChatInputCommandInteraction,
  MessageFlags,
  type RESTPostAPIApplicationCommandsJSONBody,
  SlashCommandBuilder,
} from "discord.js";
import type { BotContext } from "../src/discord/context.js";
import { inForceFor } from "../src/discord/inForce.js";
import { answerInteraction } from "../src/discord/send.js";
import { type Language, type ModelLocation, WORDING } from "../src/wording/wording.js";

/** What the bot does and which commands exist, in the channel's language, only for the asker. */
export const data = new SlashCommandBuilder()
  .setName("help")
  .setDescription("What this bot does and which commands it has")
  .setDescriptionLocalizations({ "zh-CN": "这个机器人能做什么，有哪些命令" });

/**
 * One line per slash command, from the commands' own registration data (so the list never goes stale), under a title
 * that says where the model reads members' messages.
 */
export function helpText(
  commands: ReadonlyArray<{ toJSON(): RESTPostAPIApplicationCommandsJSONBody }>,
  language: Language,
  model: ModelLocation,
): string {
  const wording = WORDING[language];
  const lines = commands
    .map((command) => command.toJSON())
    .flatMap((json) => {
      if ((json.type ?? ApplicationCommandType.ChatInput) !== ApplicationCommandType.ChatInput) return [];
      const english = "description" in json ? json.description : "";
      const localised = language === "zh" ? json.description_localizations?.["zh-CN"] : undefined;
      return [`• \`/${json.name}\`: ${localised ?? english}`];
    });
  return [
    wording.helpTitle(model),
    ...wording.helpBody,
    "",
    wording.helpCommands,
    ...lines,
    "",
    wording.analyzeHint,
  ].join("\n");
}

export async function execute(interaction: ChatInputCommandInteraction, context: BotContext): Promise<void> {
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  const { language } = await inForceFor(interaction, context);
  const text = helpText(
    context.commands.map((command) => command.data),
    language,
    context.modelLocation,
  );
  await answerInteraction(interaction, text);
}
