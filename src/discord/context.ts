import type {
  ButtonInteraction,
  ChatInputCommandInteraction,
  MessageContextMenuCommandInteraction,
  RESTPostAPIApplicationCommandsJSONBody,
  UserContextMenuCommandInteraction,
} from "discord.js";
import type { ModelReadiness } from "../llm/llm.js";
import type { Metrics } from "../observability/metrics.js";
import type { Outcomes } from "../outcomes/outcomes.js";
import type { Pipeline } from "../pipeline/pipeline.js";
import type { Config } from "../platform/config.js";
import type { KeyedSerialiser } from "../platform/keyedSerialiser.js";
import type { Logger } from "../platform/logger.js";
import type { MemberData } from "../store/memberData.js";
import type { ModerationStore } from "../store/moderation.js";
import type { MoodTally } from "../store/moodTally.js";
import type { PrivacyStore } from "../store/privacy.js";
import type { SettingsStore } from "../store/settings.js";
import type { ModelLocation } from "../wording/wording.js";
import type { AlertLimiter } from "./alertLimiter.js";
import type { AttachmentReader } from "./attachmentReader.js";
import type { ChannelFaults } from "./channelFaults.js";
import type { ChatGate } from "./chatGate.js";
import type { ModerationPause } from "./moderationPause.js";
import type { MoodChartRenderer } from "./moodChart.js";

/*
 * The two types the Discord layer and commands/ share. They live together so that neither side imports the other:
 * commands/ and the listeners both import this file.
 */

export type CommandInteraction =
  | ChatInputCommandInteraction
  | MessageContextMenuCommandInteraction
  | UserContextMenuCommandInteraction;

/**
 * One application command: its registration data and what it does. Each lives in its own file in commands/: slash
 * commands take a ChatInputCommandInteraction, context-menu commands a Message- or UserContextMenuCommandInteraction.
 */
export interface Command {
  readonly data: { readonly name: string; toJSON(): RESTPostAPIApplicationCommandsJSONBody };
  execute(interaction: CommandInteraction, context: BotContext): Promise<void>;
  /**
   * Handles a click on a button this command posted. A button's custom id is `<command name>:<action>[:<arg>]`,
   * so the click reaches the command that made it.
   */
  button?(interaction: ButtonInteraction, context: BotContext): Promise<void>;
}

/** A button's custom id for a command's action; Discord allows 100 characters. */
export function buttonId(command: string, action: string, arg = ""): string {
  return [command, action, ...(arg === "" ? [] : [arg])].join(":");
}

/** The action and argument of a button's custom id, once routed to its command. */
export function parseButtonId(customId: string): { command: string; action: string; arg: string } {
  const [command = "", action = "", ...rest] = customId.split(":");
  return { command, action, arg: rest.join(":") };
}

/** What every listener and command receives: built once by createBot, never read from module state. */
export interface BotContext {
  readonly pipeline: Pipeline;
  readonly config: Config;
  readonly logger: Logger;
  readonly chatGate: ChatGate;
  readonly channelFaults: ChannelFaults;
  /** Keeps each channel's messages in gateway order up to the point where they take a place in line. */
  readonly arrivals: KeyedSerialiser;
  /** Per-channel mood tallies for /mood, recorded as reactions happen (counts only). */
  readonly moods: MoodTally;
  /** Per-guild and per-channel settings from /settings, read for every message. */
  readonly settings: SettingsStore;
  /** Each member's opt-out, read for every message; fails closed. */
  readonly privacy: PrivacyStore;
  /** Export, deletion and purges of stored data, and per-member mood counts. */
  readonly memberData: MemberData;
  /** Each server's moderation setup from /settings moderation. */
  readonly moderation: ModerationStore;
  /** Caps moderation alerts per channel per hour. */
  readonly alertLimiter: AlertLimiter;
  /** What each server's moderators were told about moderation pausing while the model cannot take work. */
  readonly moderationPause: ModerationPause;
  /** Whether the model can take work now, read as each message is decided (a model server can be away). */
  readonly modelReadiness: ModelReadiness;
  /** Reads text attachments of a mention or of a channel task's messages. */
  readonly attachments: AttachmentReader;
  /** Draws the /mood and per-member charts, with the bundled font that has Chinese. */
  readonly charts: MoodChartRenderer;
  /** Counts what happens to messages and replies, for /metrics. */
  readonly metrics: Metrics;
  /** Told what became of each message, reply, stored turn and deletion, where the work is done. */
  readonly outcomes: Outcomes;
  /** Every command the bot serves, for /help. */
  readonly commands: readonly Command[];
  /** Where the model reads members' messages, which /help, /privacy show and /settings moderation tell them. */
  readonly modelLocation: ModelLocation;
}
