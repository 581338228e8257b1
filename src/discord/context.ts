import type {
  ChatInputCommandInteraction,
  MessageContextMenuCommandInteraction,
  RESTPostAPIApplicationCommandsJSONBody,
} from "discord.js";
import type { AttachmentReader } from "../attachments.js";
import type { ChatGate } from "../chatGate.js";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../observability/metrics.js";
import type { Pipeline } from "../pipeline.js";
import type { MoodTally } from "../store/moodTally.js";
import type { SettingsStore } from "../store/settings.js";
import type { ArrivalOrder } from "./arrivalOrder.js";
import type { ChannelFaults } from "./channelFaults.js";

/*
 * The two types the Discord layer and commands/ share. They live together so that neither side imports the other:
 * commands/ and the listeners both import this file.
 */

export type CommandInteraction = ChatInputCommandInteraction | MessageContextMenuCommandInteraction;

/**
 * One application command: its registration data and what it does. Each lives in its own file in commands/: slash
 * commands take a ChatInputCommandInteraction, message context-menu commands a MessageContextMenuCommandInteraction.
 */
export interface Command {
  readonly data: { readonly name: string; toJSON(): RESTPostAPIApplicationCommandsJSONBody };
  execute(interaction: CommandInteraction, context: BotContext): Promise<void>;
}

/** What every listener and command receives: built once by createBot, never read from module state. */
export interface BotContext {
  readonly pipeline: Pipeline;
  readonly config: Config;
  readonly logger: Logger;
  readonly chatGate: ChatGate;
  readonly channelFaults: ChannelFaults;
  /** Keeps each channel's messages in gateway order up to the point where they take a place in line. */
  readonly arrivals: ArrivalOrder;
  /** Per-channel mood tallies for /mood, recorded as reactions happen (counts only). */
  readonly moods: MoodTally;
  /** Per-guild and per-channel settings from /settings, read for every message. */
  readonly settings: SettingsStore;
  /** Reads text attachments of a mention or of a channel task's messages. */
  readonly attachments: AttachmentReader;
  /** Counts what happens to messages and replies, for /metrics. */
  readonly metrics: Metrics;
  /** Every command the bot serves, for /help. */
  readonly commands: readonly Command[];
}
