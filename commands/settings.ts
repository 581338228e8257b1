import {
  type ChatInputCommandInteraction,
  MessageFlags,
  PermissionFlagsBits,
  SlashCommandBuilder,
  type SlashCommandStringOption,
} from "discord.js";
import type { BotContext } from "../src/discord/context.js";
import { NO_MENTIONS } from "../src/discord/send.js";
import { type Scope, SETTING_KEYS, SETTING_VALUES, type SettingKey } from "../src/store/settings.js";

const SETTING_HELP: Record<SettingKey, string> = {
  reactions: "mood reactions: on or off",
  "reaction-share": "share of messages that get a reaction, 0 to 100 (%)",
  "emoji-positive": "emoji for positive (unicode, <:name:id>, or none)",
  "emoji-negative": "emoji for negative (unicode, <:name:id>, or none)",
  "emoji-neutral": "emoji for neutral (unicode, <:name:id>, or none)",
  persona: "the bot's persona for chat (its system prompt)",
  "chat-channel": "answer every message here without a mention: on or off",
  "reply-chain": "a reply to the bot's message counts as a mention: on or off",
  language: "the bot's own language here: en or zh",
};

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
  const reply = (content: string) =>
    interaction.reply({ content, flags: MessageFlags.Ephemeral, allowedMentions: NO_MENTIONS });
  if (!interaction.inGuild()) {
    await reply("Settings are per server: use this command in a server channel.");
    return;
  }
  if (interaction.memberPermissions?.has(PermissionFlagsBits.ManageGuild) !== true) {
    await reply("Only members with Manage Server can change the bot's settings.");
    return;
  }
  const sub = interaction.options.getSubcommand();
  const scope = (interaction.options.getString("scope") ?? "channel") as Scope;
  const scopeId = scope === "guild" ? interaction.guildId : interaction.channelId;
  const where = scope === "guild" ? "this server" : "this channel";
  if (sub === "show") {
    const guild = await context.settings.get("guild", interaction.guildId);
    const channel = await context.settings.get("channel", interaction.channelId);
    const lines = SETTING_KEYS.map((key) => {
      const value = channel[key] ?? guild[key];
      const from = channel[key] !== undefined ? "channel" : guild[key] !== undefined ? "server" : "default";
      const shown =
        value === undefined ? "(default)" : key === "persona" ? `"${value.slice(0, 80)}…"` : value;
      return `• \`${key}\`: ${shown}${from === "default" ? "" : ` (${from})`} — ${SETTING_HELP[key]}`;
    });
    await reply(["Settings in force in this channel:", ...lines].join("\n"));
    return;
  }
  const key = interaction.options.getString("key", true) as SettingKey;
  if (sub === "reset") {
    await context.settings.reset(scope, scopeId, key);
    await reply(`\`${key}\` is back to its default for ${where}.`);
    return;
  }
  const parsed = SETTING_VALUES[key].safeParse(interaction.options.getString("value", true).trim());
  if (!parsed.success) {
    await reply(
      `\`${key}\` ${parsed.error.issues[0]?.message ?? "has an invalid value"}: ${SETTING_HELP[key]}.`,
    );
    return;
  }
  await context.settings.set(scope, scopeId, key, parsed.data);
  context.logger.info({ key, scope }, "setting changed");
  await reply(
    `\`${key}\` is now \`${parsed.data.slice(0, 100)}\` for ${where}. It applies from the next message.`,
  );
}
