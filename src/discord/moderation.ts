import {
  type APIActionRowComponent,
  type APIComponentInMessageActionRow,
  type APIEmbed,
  type ButtonInteraction,
  ButtonStyle,
  ComponentType,
  DiscordAPIError,
  type Message,
  MessageFlags,
  PermissionFlagsBits,
  Routes,
} from "discord.js";
import type { LabelResult } from "../llm/llm.js";
import type { TellOutcome } from "../outcomes/outcomes.js";
import { JobCancelledError, ModelUnavailableError } from "../platform/errors.js";
import type { Logger } from "../platform/logger.js";
import type { ModerationSettings } from "../store/moderation.js";
import { percent, replyLanguage, WORDING, type Wording } from "../wording/wording.js";
import { type BotContext, buttonId, parseButtonId } from "./context.js";
import { homeChannelId } from "./homeChannel.js";
import { MODEL_UNAVAILABLE } from "./reply.js";

/** The custom-id prefix of the alert buttons, routed to `onModerationButton`. */
export const MODERATION_BUTTONS = "moderation";
const TIMEOUT_MS = 10 * 60_000;
/** How much of the message an alert quotes. */
const QUOTE_CHARS = 500;
/** Discord's codes for a refusal by permissions or role order, and for a message already gone. */
const MISSING_PERMISSIONS = 50013;
const UNKNOWN_MESSAGE = 10008;

/**
 * Moderation of one message, apart from moods and replies: it runs in the channels a server covers, whatever the
 * reaction settings or the member's privacy choice, and posts an alert when a label other than ok reaches the
 * server's threshold. Failures are logged; a message is never held up by them.
 */
export async function moderateMessage(
  message: Message,
  context: BotContext,
  log: Logger,
  told: TellOutcome,
): Promise<void> {
  if (!message.inGuild()) return;
  const setup = await context.moderation.get(message.guildId);
  if (setup.mode === "off" || setup.alertChannelId === undefined) return;
  const skipped = (reason: string) => {
    log.debug(`moderation skipped: ${reason}`);
    told({ kind: "skipped", job: "moderation", reason });
  };
  if (!setup.channelIds.includes(homeChannelId(message))) return skipped("channel not covered");
  if (message.member?.roles.cache.some((role) => setup.bypassRoleIds.includes(role.id))) {
    return skipped("a bypass role");
  }
  try {
    const readiness = context.modelReadiness;
    if (!readiness.ready) throw new ModelUnavailableError(readiness.cause);
    const outcome = await context.pipeline.moderate(message.content, { group: message.guildId });
    if (outcome.kind === "skipped") return skipped(outcome.reason);
    // A result the caches gave while the model is away is no sign that checks run again.
    if (context.modelReadiness.ready && context.moderationPause.resumed(message.guildId)) {
      log.info("moderation resumed in this server; its moderators are told");
      await postPauseNotice(message, setup, (wording) => wording.moderation.resumed, context, log);
    }
    const { label, confidence } = outcome.result;
    context.metrics.moderationChecked(label);
    log.debug({ label, confidence }, "moderation checked");
    if (label === "ok" || confidence < setup.threshold) {
      told({ kind: "moderated", label, confidence, alerted: false });
      return;
    }
    if (!context.alertLimiter.take(message.channelId)) {
      context.metrics.moderationAlert("capped");
      log.info({ label }, "moderation alert not posted: this channel's hourly cap is reached");
      told({ kind: "moderated", label, confidence, alerted: false, notAlertedReason: "hourly cap" });
      return;
    }
    await postAlert(message, setup, outcome.result, context);
    context.metrics.moderationAlert(setup.mode === "live" ? "live" : "dry-run");
    log.info({ label, confidence, mode: setup.mode }, "moderation alert posted");
    told({ kind: "moderated", label, confidence, alerted: true });
  } catch (error) {
    if (error instanceof ModelUnavailableError) {
      context.metrics.moderationSkipped(MODEL_UNAVAILABLE);
      skipped(MODEL_UNAVAILABLE);
      if (context.moderationPause.paused(message.guildId)) {
        log.info(
          { cause: error.cause },
          "moderation paused in this server: the model is not ready; its moderators are told",
        );
        await postPauseNotice(message, setup, (wording) => wording.moderation.paused, context, log);
      }
    } else if (error instanceof JobCancelledError) {
      context.metrics.moderationShed(error.reason);
      log.debug({ reason: error.reason }, "moderation check dropped");
      told({ kind: "shed", job: "moderation", reason: error.reason });
    } else {
      log.warn({ err: error }, "moderation check failed");
      told({ kind: "failed", job: "moderation", cutShort: false, error });
    }
  }
}

/** The server's alert channel, and the wording of its language. */
async function alertChannel(message: Message<true>, setup: ModerationSettings, context: BotContext) {
  const channel = message.guild.channels.cache.get(setup.alertChannelId ?? "");
  if (!channel?.isSendable()) throw new Error(`the alert channel ${setup.alertChannelId} cannot be sent to`);
  const settings = await context.settings.effective(message.guildId, channel.id);
  return { channel, wording: WORDING[replyLanguage(settings.language)] };
}

/**
 * Tells the alert channel that moderation paused or resumed. It names no cause: that is the operator's, and can
 * name their machines. A failure is logged, never thrown: the message it came with is not held up.
 */
async function postPauseNotice(
  message: Message<true>,
  setup: ModerationSettings,
  notice: (wording: Wording) => string,
  context: BotContext,
  log: Logger,
): Promise<void> {
  try {
    const { channel, wording } = await alertChannel(message, setup, context);
    await channel.send({ content: notice(wording) });
  } catch (error) {
    log.warn({ err: error }, "could not tell the alert channel that moderation paused or resumed");
  }
}

async function postAlert(
  message: Message<true>,
  setup: ModerationSettings,
  result: LabelResult<string>,
  context: BotContext,
): Promise<void> {
  const { channel, wording } = await alertChannel(message, setup, context);
  const live = setup.mode === "live";
  await channel.send({
    embeds: [alertEmbed(message, result, wording, live)],
    components: live ? [alertButtons(message, wording)] : [],
  });
}

function alertEmbed(
  message: Message<true>,
  result: LabelResult<string>,
  wording: Wording,
  live: boolean,
): APIEmbed {
  const m = wording.moderation;
  const quote =
    message.content.length > QUOTE_CHARS ? `${message.content.slice(0, QUOTE_CHARS)}…` : message.content;
  return {
    title: m.alertTitle(result.label),
    url: message.url,
    color: 0xed4245,
    description: `>>> ${quote}`,
    fields: [
      { name: m.author, value: `<@${message.author.id}> (${message.author.username})`, inline: true },
      { name: m.channel, value: `<#${message.channelId}>`, inline: true },
      { name: m.label, value: result.label, inline: true },
      { name: m.confidence, value: percent(result.confidence), inline: true },
      { name: m.jump, value: message.url },
    ],
    ...(live ? {} : { footer: { text: m.dryRun } }),
    timestamp: new Date(message.createdTimestamp).toISOString(),
  };
}

function alertButtons(
  message: Message<true>,
  wording: Wording,
): APIActionRowComponent<APIComponentInMessageActionRow> {
  const m = wording.moderation;
  const button = (
    style: ButtonStyle.Danger | ButtonStyle.Secondary,
    action: string,
    arg: string,
    label: string,
  ) =>
    ({
      type: ComponentType.Button,
      style,
      custom_id: buttonId(MODERATION_BUTTONS, action, arg),
      label,
    }) as const;
  return {
    type: ComponentType.ActionRow,
    components: [
      button(ButtonStyle.Danger, "delete", `${message.channelId}:${message.id}`, m.deleteButton),
      button(ButtonStyle.Danger, "timeout", message.author.id, m.timeoutButton),
      button(ButtonStyle.Secondary, "dismiss", "", m.dismissButton),
    ],
  };
}

/** What each button needs of the person who clicks it, as Discord names the permission. */
const NEEDS = {
  delete: { flag: PermissionFlagsBits.ManageMessages, name: "Manage Messages" },
  timeout: { flag: PermissionFlagsBits.ModerateMembers, name: "Moderate Members" },
  dismiss: { flag: PermissionFlagsBits.ManageMessages, name: "Manage Messages" },
} as const;

/**
 * A click on an alert's button. It acts only if the person who clicked holds the permission the action needs;
 * the alert then records who did what, and Discord's audit log carries the reason. A refusal by Discord (role
 * order, a missing permission) is written into the alert in plain words, and the buttons stay for a retry.
 */
export async function onModerationButton(interaction: ButtonInteraction, context: BotContext): Promise<void> {
  const { action, arg } = parseButtonId(interaction.customId);
  const settings = await context.settings.effective(interaction.guildId, interaction.channelId);
  const wording = WORDING[replyLanguage(settings.language, interaction.locale)];
  if (!(action in NEEDS) || !interaction.inGuild()) {
    await interaction.reply({ content: wording.unknownCommand, flags: MessageFlags.Ephemeral });
    return;
  }
  const need = NEEDS[action as keyof typeof NEEDS];
  if (interaction.memberPermissions?.has(need.flag) !== true) {
    await interaction.reply({ content: wording.moderation.needs(need.name), flags: MessageFlags.Ephemeral });
    return;
  }
  await interaction.deferUpdate();
  const by = `<@${interaction.user.id}>`;
  const reason = `moodbot alert: ${action} by ${interaction.user.username} (${interaction.user.id})`;
  const m = wording.moderation;
  let note: string;
  let done = true;
  try {
    if (action === "delete") {
      const [channelId = "", messageId = ""] = arg.split(":");
      await interaction.client.rest.delete(Routes.channelMessage(channelId, messageId), { reason });
      note = m.deleted(by);
    } else if (action === "timeout") {
      const until = new Date(Date.now() + TIMEOUT_MS).toISOString();
      await interaction.client.rest.patch(Routes.guildMember(interaction.guildId, arg), {
        body: { communication_disabled_until: until },
        reason,
      });
      note = m.timedOut(by);
    } else {
      note = m.dismissed(by);
    }
  } catch (error) {
    if (
      !(error instanceof DiscordAPIError) ||
      ![MISSING_PERMISSIONS, UNKNOWN_MESSAGE].includes(Number(error.code))
    ) {
      throw error;
    }
    note = error.code === UNKNOWN_MESSAGE ? m.alreadyGone : m.refusedRoleOrder;
    done = error.code === UNKNOWN_MESSAGE;
  }
  context.logger.info({ action, refused: !done }, "moderation action");
  const [embed] = interaction.message.embeds;
  const fields = [...(embed?.fields ?? []), { name: m.action, value: note }];
  await interaction.editReply({
    embeds: [{ ...(embed?.toJSON() ?? {}), fields }],
    ...(done ? { components: [] } : {}),
  });
}
