import type { Command } from "../../commands/command.js";
import type { ChatGate } from "../chatGate.js";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import type { Pipeline } from "../pipeline.js";
import type { MoodTally } from "../store/moodTally.js";
import type { SettingsStore } from "../store/settings.js";
import type { ArrivalOrder } from "./arrivalOrder.js";
import type { ChannelFaults } from "./channelFaults.js";

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
  /** Every command the bot serves, for /help. */
  readonly commands: readonly Command[];
}
