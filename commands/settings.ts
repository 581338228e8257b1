import {
  type ChatInputCommandInteraction,
  MessageFlags,
  PermissionFlagsBits,
  SlashCommandBuilder,
  type SlashCommandStringOption,
} from "discord.js";
import type { BotContext } from "../src/discord/context.js";
import { inForceFor } from "../src/discord/inForce.js";
import { answerInteraction } from "../src/discord/send.js";
import { type Scope, SETTING_KEYS, SETTING_VALUES, type SettingKey } from "../src/store/settings.js";
import type { Wording } from "../src/wording.js";

const keyOption = (option: SlashCommandStringOption) =>
  option
    .setName("key")
    .setDescription("Which setting")
    .setRequired(true)
    .addChoices(...SETTING_KEYS.map((key) => ({ name: key, value: key })));
const scopeOption = (option: SlashCommandStringOption) =>
  option
    .setName("scope")
    .setDescription("This channel (default) or the whole server")
    .addChoices({ name: "channel", value: "channel" }, { name: "server", value: "guild" });

export const data = new SlashCommandBuilder()
  .setName("settings")
  .setDescription("Show or change how the bot behaves on this server or in this channel")
  .setDescriptionLocalizations({ "zh-CN": "查看或修改机器人在本服务器或本频道的设置" })
  .setDefaultMemberPermissions(PermissionFlagsBits.ManageGuild)
  .setDMPermission(false)
  .addSubcommand((sub) => sub.setName("show").setDescription("Show the settings in force in this channel"))
  .addSubcommand((sub) =>
    sub
      .setName("set")
      .setDescription("Change a setting")
      .addStringOption(keyOption)
      .addStringOption((option) =>
        option.setName("value").setDescription("The new value").setRequired(true).setMaxLength(1500),
      )
      .addStringOption(scopeOption),
  )
  .addSubcommand((sub) =>
    sub
      .setName("reset")
      .setDescription("Go back to the default")
      .addStringOption(keyOption)
      .addStringOption(scopeOption),
  );

export async function execute(interaction: ChatInputCommandInteraction, context: BotContext): Promise<void> {
  // Every answer here reads or writes the store: defer first, so Discord's 3-second deadline never passes.
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  const { wording } = await inForceFor(interaction, context);
  const answer = (content: string) => answerInteraction(interaction, content);
  if (!interaction.inGuild()) return answer(wording.settings.guildOnly);
  if (interaction.memberPermissions?.has(PermissionFlagsBits.ManageGuild) !== true) {
    return answer(wording.settings.denied);
  }
  const sub = interaction.options.getSubcommand();
  if (sub === "show")
    return answer(await showSettings(interaction.guildId, interaction.channelId, context, wording));
  const scope = (interaction.options.getString("scope") ?? "channel") as Scope;
  const scopeId = scope === "guild" ? interaction.guildId : interaction.channelId;
  const where = wording.settings.where[scope];
  const key = interaction.options.getString("key", true) as SettingKey;
  if (sub === "reset") {
    await context.settings.reset(scope, scopeId, key);
    return answer(wording.settings.reset(key, where));
  }
  const parsed = SETTING_VALUES[key].safeParse(interaction.options.getString("value", true).trim());
  if (!parsed.success) return answer(wording.settings.invalid(key, wording.settings.help[key]));
  await context.settings.set(scope, scopeId, key, parsed.data);
  context.logger.info({ key, scope }, "setting changed");
  return answer(wording.settings.changed(key, parsed.data.slice(0, 100), where));
}

/** One line per setting: its value in this channel, where that value comes from, and what it does. */
async function showSettings(
  guildId: string,
  channelId: string,
  context: BotContext,
  wording: Wording,
): Promise<string> {
  const guild = await context.settings.get("guild", guildId);
  const channel = await context.settings.get("channel", channelId);
  const lines = SETTING_KEYS.map((key) => {
    const value = channel[key] ?? guild[key];
    const from = channel[key] !== undefined ? "channel" : guild[key] !== undefined ? "guild" : undefined;
    const shown =
      value === undefined ? wording.settings.unset : key === "persona" ? `"${value.slice(0, 80)}…"` : value;
    const source = from === undefined ? "" : ` (${wording.settings.from[from]})`;
    return `• \`${key}\`: ${shown}${source} — ${wording.settings.help[key]}`;
  });
  return [wording.settings.inForce, ...lines].join("\n");
}
