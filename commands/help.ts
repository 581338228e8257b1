import {
  ApplicationCommandType,
  type ChatInputCommandInteraction,
  MessageFlags,
  type RESTPostAPIApplicationCommandsJSONBody,
  SlashCommandBuilder,
} from "discord.js";
import type { BotContext } from "../src/discord/context.js";
import { NO_MENTIONS } from "../src/discord/send.js";
import { languageOf, TEXTS } from "../src/i18n.js";

/** What the bot does and which commands exist, in the asker's language, only for them. */
export const data = new SlashCommandBuilder()
  .setName("help")
  .setDescription("What this bot does and which commands it has")
  .setDescriptionLocalizations({ "zh-CN": "这个机器人能做什么，有哪些命令" });

/** One line per slash command, from the commands' own registration data (so the list never goes stale). */
export function helpText(
  commands: ReadonlyArray<{ toJSON(): RESTPostAPIApplicationCommandsJSONBody }>,
  locale: string | null,
): string {
  const language = languageOf(locale);
  const texts = TEXTS[language];
  const lines = commands
    .map((command) => command.toJSON())
    .flatMap((json) => {
      if ((json.type ?? ApplicationCommandType.ChatInput) !== ApplicationCommandType.ChatInput) return [];
      const english = "description" in json ? json.description : "";
      const localised = language === "zh" ? json.description_localizations?.["zh-CN"] : undefined;
      return [`• \`/${json.name}\`: ${localised ?? english}`];
    });
  return [texts.helpTitle, ...texts.helpBody, "", texts.helpCommands, ...lines, "", texts.analyzeHint].join(
    "\n",
  );
}

export async function execute(interaction: ChatInputCommandInteraction, context: BotContext): Promise<void> {
  await interaction.reply({
    content: helpText(
      context.commands.map((command) => command.data),
      interaction.locale,
    ),
    flags: MessageFlags.Ephemeral,
    allowedMentions: NO_MENTIONS,
  });
}
