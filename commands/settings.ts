import {
  type APIActionRowComponent,
  type APIComponentInMessageActionRow,
  type ButtonInteraction,
  ButtonStyle,
  ChannelType,
  type ChatInputCommandInteraction,
  ComponentType,
  InteractionContextType,
  MessageFlags,
  PermissionFlagsBits,
  SlashCommandBuilder,
  type SlashCommandStringOption,
} from "discord.js";
import { type BotContext, buttonId, parseButtonId } from "../src/discord/context.js";
import { inForceFor } from "../src/discord/inForce.js";
import { answerInteraction } from "../src/discord/send.js";
import {
  DEFAULT_MODERATION_THRESHOLD,
  MODERATION_MODES,
  type ModerationMode,
  type ModerationSettings,
} from "../src/store/moderation.js";
import { type Scope, SETTING_VALUES } from "../src/store/settings.js";
import { SETTING_KEYS, type SettingKey } from "../src/wording/keys.js";
import type { Wording } from "../src/wording/wording.js";

const TEXT_CHANNELS = [ChannelType.GuildText, ChannelType.GuildAnnouncement] as const;

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
  .setContexts(InteractionContextType.Guild)
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
  )
  .addSubcommand((sub) =>
    sub
      .setName("moderation")
      .setDescription("Local moderation alerts: where they go, what is checked, and dry-run or live")
      .setDescriptionLocalizations({ "zh-CN": "本地审核提醒：发到哪里、检查什么、试运行还是正式" })
      .addStringOption((option) =>
        option
          .setName("mode")
          .setDescription(
            "off, dry-run (alerts without buttons; the start) or live (with Delete and Timeout)",
          )
          .addChoices(...MODERATION_MODES.map((mode) => ({ name: mode, value: mode }))),
      )
      .addChannelOption((option) =>
        option
          .setName("alert-channel")
          .setDescription("Where alerts are posted (a channel only moderators can read)")
          .addChannelTypes(...TEXT_CHANNELS),
      )
      .addChannelOption((option) =>
        option
          .setName("cover")
          .setDescription("Check this channel's messages")
          .addChannelTypes(...TEXT_CHANNELS),
      )
      .addChannelOption((option) =>
        option
          .setName("uncover")
          .setDescription("Stop checking this channel")
          .addChannelTypes(...TEXT_CHANNELS),
      )
      .addNumberOption((option) =>
        option
          .setName("threshold")
          .setDescription(`Alert at or above this confidence (default ${DEFAULT_MODERATION_THRESHOLD})`)
          .setMinValue(0.5)
          .setMaxValue(1),
      )
      .addRoleOption((option) =>
        option.setName("bypass-role").setDescription("Never check members with this role"),
      )
      .addRoleOption((option) =>
        option.setName("unbypass-role").setDescription("Check members with this role again"),
      ),
  )
  .addSubcommand((sub) =>
    sub
      .setName("purge")
      .setDescription("Delete everything the bot stores for this server (asks to confirm)")
      .setDescriptionLocalizations({ "zh-CN": "删除机器人为这个服务器保存的一切（会先确认）" }),
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
  if (sub === "moderation") return answer(await configureModeration(interaction, context, wording));
  if (sub === "purge") {
    return answerInteraction(interaction, wording.settings.purgeConfirm, {
      components: [purgeButtons(interaction.guildId, wording)],
    });
  }
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

/** The confirmation under /settings purge: nothing is deleted until an admin clicks the red button. */
function purgeButtons(
  guildId: string,
  wording: Wording,
): APIActionRowComponent<APIComponentInMessageActionRow> {
  return {
    type: ComponentType.ActionRow,
    components: [
      {
        type: ComponentType.Button,
        style: ButtonStyle.Danger,
        custom_id: buttonId("settings", "purge", guildId),
        label: wording.settings.purgeButton,
      },
      {
        type: ComponentType.Button,
        style: ButtonStyle.Secondary,
        custom_id: buttonId("settings", "cancel"),
        label: wording.settings.cancelButton,
      },
    ],
  };
}

/**
 * The purge confirmation's buttons. The click is checked again: the message may have been shown to someone who has
 * since lost Manage Server, and a custom id names its server so it cannot purge another.
 */
export async function button(interaction: ButtonInteraction, context: BotContext): Promise<void> {
  await interaction.deferUpdate();
  const { wording } = await inForceFor(interaction, context);
  const answer = (content: string) => answerInteraction(interaction, content, { components: [] });
  const { action, arg } = parseButtonId(interaction.customId);
  if (!interaction.inGuild()) return answer(wording.settings.guildOnly);
  if (interaction.memberPermissions?.has(PermissionFlagsBits.ManageGuild) !== true) {
    return answer(wording.settings.denied);
  }
  if (action !== "purge" || arg !== interaction.guildId) return answer(wording.settings.purgeCancelled);
  const channels = [...(interaction.guild?.channels.cache.keys() ?? [])];
  const { channels: purged } = await context.memberData.purgeGuild(interaction.guildId, channels);
  context.outcomes.emit({ kind: "deleted", scope: "guild", id: interaction.guildId });
  context.logger.info({ channels: purged }, "server data purged by an admin");
  return answer(wording.settings.purged(purged));
}

/**
 * Applies the options given to the server's moderation setup and shows the result. A first setup starts in dry-run:
 * a small model must be tuned on the server's own messages before its alerts carry buttons that act.
 */
async function configureModeration(
  interaction: ChatInputCommandInteraction<"cached" | "raw">,
  context: BotContext,
  wording: Wording,
): Promise<string> {
  if (!context.pipeline.canModerate) return wording.moderation.unavailable;
  const options = interaction.options;
  const current = await context.moderation.get(interaction.guildId);
  const alertChannelId = options.getChannel("alert-channel")?.id ?? current.alertChannelId;
  const cover = options.getChannel("cover")?.id;
  const uncover = options.getChannel("uncover")?.id;
  const startsUp = current.mode === "off" && (alertChannelId !== undefined || cover !== undefined);
  const mode = (options.getString("mode") as ModerationMode | null) ?? (startsUp ? "dry-run" : current.mode);
  const next: ModerationSettings = {
    mode,
    channelIds: edited(current.channelIds, cover, uncover),
    threshold: options.getNumber("threshold") ?? current.threshold,
    bypassRoleIds: edited(
      current.bypassRoleIds,
      options.getRole("bypass-role")?.id,
      options.getRole("unbypass-role")?.id,
    ),
    ...(alertChannelId === undefined ? {} : { alertChannelId }),
  };
  if (next.mode !== "off" && next.alertChannelId === undefined) return wording.moderation.noAlertChannel;
  await context.moderation.set(interaction.guildId, next);
  context.logger.info({ mode: next.mode, channels: next.channelIds.length }, "moderation setup changed");
  return wording.moderation.setup({
    model: context.modelLocation,
    mode: next.mode,
    alertChannel: next.alertChannelId === undefined ? undefined : `<#${next.alertChannelId}>`,
    channels: next.channelIds.map((id) => `<#${id}>`),
    threshold: String(next.threshold),
    bypassRoles: next.bypassRoleIds.map((id) => `<@&${id}>`),
  });
}

/** A list of ids with one added and one removed, each only if given. */
function edited(ids: readonly string[], add: string | undefined, remove: string | undefined): string[] {
  const next = new Set(ids);
  if (add !== undefined) next.add(add);
  if (remove !== undefined) next.delete(remove);
  return [...next];
}
