import { Client, Events, GatewayIntentBits, Partials, RESTEvents } from "discord.js";
import type { Llm } from "../llm/llm.js";
import type { Metrics } from "../observability/metrics.js";
import type { Outcomes } from "../outcomes/outcomes.js";
import type { Pipeline } from "../pipeline/pipeline.js";
import type { Config } from "../platform/config.js";
import { KeyedSerialiser } from "../platform/keyedSerialiser.js";
import type { Logger } from "../platform/logger.js";
import type { MemberData } from "../store/memberData.js";
import type { ModerationStore } from "../store/moderation.js";
import type { MoodTally } from "../store/moodTally.js";
import type { PrivacyStore } from "../store/privacy.js";
import type { SettingsStore } from "../store/settings.js";
import type { Task } from "../tasks/tasks.js";
import { modelLocationOf } from "../wording/wording.js";
import { AlertLimiter } from "./alertLimiter.js";
import { AttachmentReader } from "./attachmentReader.js";
import { ChannelFaults } from "./channelFaults.js";
import { ChatGate } from "./chatGate.js";
import type { BotContext, Command } from "./context.js";
import { ModerationPause, PAUSE_NOTICE_GAP_MS } from "./moderationPause.js";
import { MoodChartRenderer } from "./moodChart.js";
import { onGuildRemoved, onMessagesDeleted } from "./onDataEvents.js";
import { onInteraction } from "./onInteraction.js";
import { onMessage } from "./onMessage.js";
import { NO_MENTIONS } from "./send.js";
import { ServedCommands } from "./servedCommands.js";
import type { ShardPlan } from "./shards.js";

/** The ready parts the bot runs on (see assemble() in src/assembly/app.ts), and how it connects. */
export interface BotDeps {
  readonly pipeline: Pipeline;
  /** Read only for its readiness: every model call goes through the pipeline. */
  readonly llm: Pick<Llm, "readiness">;
  readonly settings: SettingsStore;
  readonly moods: MoodTally;
  readonly privacy: PrivacyStore;
  readonly memberData: MemberData;
  readonly moderation: ModerationStore;
  /** The prompt-defined tasks: the bot serves a command for each that asks for one, beside its own. */
  readonly tasks: readonly Task[];
  readonly metrics: Metrics;
  /** Told what became of each message: reacted, skipped, replied, shed, … */
  readonly outcomes: Outcomes;
  readonly logger: Logger;
  readonly config: Config;
  /** The gateway shards this process runs; one unsharded connection when absent. */
  readonly shards?: ShardPlan;
  /** The clock of the alert cap and the moderation pause notices: Date.now, or a test's. */
  readonly now?: () => number;
}

export interface Bot {
  /** Logs in; resolves once the gateway session is ready. */
  start(): Promise<void>;
  /** Stops taking events, waits for handlers in flight to finish, and closes the gateway connection. */
  stop(): Promise<void>;
  /** True while every shard of this process has a live gateway session. */
  readonly connected: boolean;
  /**
   * Serves these tasks' commands from the next interaction on (after a prompt reload), and registers them with
   * Discord when they changed and the config allows; resolves to what became of the registration.
   */
  useTasks(tasks: readonly Task[]): Promise<string>;
}

/** Wires the bot together without connecting to anything: only `start()` does that. */
export function createBot(deps: BotDeps): Bot {
  const { config, logger, metrics } = deps;
  const commands = new ServedCommands(deps.tasks, config, logger);
  const context = botContext(deps, () => commands.list());
  const client = discordClient(config, deps.shards);
  const listeners = new Listeners(logger);
  const gateway = watchGateway(client, deps.shards?.ids ?? [0], metrics, logger);

  client.once(
    Events.ClientReady,
    listeners.wrap(Events.ClientReady, (ready: Client<true>) => {
      logger.info({ user: ready.user.tag, guilds: ready.guilds.cache.size }, "connected to Discord");
    }),
  );
  client.on(
    Events.MessageCreate,
    listeners.wrap(Events.MessageCreate, (message) => onMessage(message, context)),
  );
  client.on(
    Events.InteractionCreate,
    listeners.wrap(Events.InteractionCreate, (interaction) =>
      onInteraction(interaction, commands.byName, context),
    ),
  );
  client.on(
    Events.MessageDelete,
    listeners.wrap(Events.MessageDelete, (message) =>
      onMessagesDeleted(message.channelId, [message.id], context),
    ),
  );
  client.on(
    Events.MessageBulkDelete,
    listeners.wrap(Events.MessageBulkDelete, (messages, channel) =>
      onMessagesDeleted(channel.id, [...messages.keys()], context),
    ),
  );
  // discord.js emits GuildDelete only when the bot left or was removed; an outage is GuildUnavailable.
  client.on(Events.GuildUnavailable, (guild) => {
    logger.warn({ guildId: guild.id }, "server unavailable (a Discord outage): its data is kept");
    context.outcomes.emit({ kind: "kept", scope: "guild", id: guild.id, reason: "outage" });
  });
  client.on(
    Events.GuildDelete,
    listeners.wrap(Events.GuildDelete, (guild) => onGuildRemoved(guild, context)),
  );
  client.on(Events.Error, (error) => logger.error({ err: error }, "discord client error"));
  client.on(Events.Warn, (message) => logger.warn({ discord: message }, "discord client warning"));
  client.rest.on(RESTEvents.Response, (_request, response) => {
    if (response.status === 429) metrics.restRateLimitHit();
  });

  return {
    async start() {
      const ready = new Promise<void>((resolve) => client.once(Events.ClientReady, () => resolve()));
      await client.login(config.discord.token);
      await ready;
    },
    async stop() {
      await listeners.stop();
      await client.destroy();
    },
    get connected() {
      return gateway.connected();
    },
    useTasks(tasks) {
      return commands.useTasks(tasks);
    },
  };
}

/**
 * Which shards have a live session, from the client's shard events; reconnects and resumes are logged and
 * counted.
 */
function watchGateway(client: Client, shardIds: readonly number[], metrics: Metrics, logger: Logger) {
  const live = new Set<number>();
  client.on(Events.ShardReady, (shardId) => live.add(shardId));
  client.on(Events.ShardResume, (shardId) => {
    live.add(shardId);
    metrics.gatewayResumed();
    logger.info({ shardId }, "gateway resumed");
  });
  client.on(Events.ShardDisconnect, (event, shardId) => {
    live.delete(shardId);
    logger.warn({ shardId, code: event.code }, "gateway disconnected");
  });
  client.on(Events.ShardReconnecting, (shardId) => {
    live.delete(shardId);
    metrics.gatewayReconnected();
  });
  return { connected: () => shardIds.every((id) => live.has(id)) };
}

/** The app's parts plus the Discord layer's own per-process state. */
function botContext(deps: BotDeps, commands: () => readonly Command[]): BotContext {
  const { config } = deps;
  return {
    pipeline: deps.pipeline,
    config,
    logger: deps.logger,
    modelLocation: modelLocationOf(config.model.runtime === "server" ? config.model.url : undefined),
    chatGate: new ChatGate({
      userPerMinute: config.chat.userPerMinute,
      channelPerMinute: config.chat.channelPerMinute,
      channelQueue: config.chat.channelQueue,
    }),
    channelFaults: new ChannelFaults(),
    arrivals: new KeyedSerialiser(),
    moods: deps.moods,
    settings: deps.settings,
    privacy: deps.privacy,
    memberData: deps.memberData,
    moderation: deps.moderation,
    alertLimiter: new AlertLimiter(config.moderation.alertsPerHour, deps.now),
    moderationPause: new ModerationPause(PAUSE_NOTICE_GAP_MS, deps.now),
    get modelReadiness() {
      return deps.llm.readiness;
    },
    metrics: deps.metrics,
    outcomes: deps.outcomes,
    charts: new MoodChartRenderer(),
    attachments: new AttachmentReader(config.attachments, deps.logger.child({ component: "attachments" })),
    get commands() {
      return commands();
    },
  };
}

function discordClient(config: Config, shards: ShardPlan | undefined): Client {
  const intents = [
    GatewayIntentBits.Guilds,
    GatewayIntentBits.GuildMessages,
    GatewayIntentBits.MessageContent,
  ];
  return new Client({
    // DM channels are not cached before their first message, so receiving DMs needs the Channel partial. The
    // Message partial delivers the deletion of a message sent before this process started (and so not cached).
    intents: config.access.allowDms ? [...intents, GatewayIntentBits.DirectMessages] : intents,
    partials: config.access.allowDms ? [Partials.Channel, Partials.Message] : [Partials.Message],
    // The one place mentions are turned off: discord.js applies it to every message, edit and interaction reply.
    allowedMentions: NO_MENTIONS,
    failIfNotExists: false,
    rest: { api: config.discord.apiUrl },
    shards: [...(shards?.ids ?? [0])],
    shardCount: shards?.count ?? 1,
  });
}

/**
 * Every listener goes through here: its errors are logged, never thrown into discord.js's emitter, and `stop`
 * waits for the handlers in flight.
 */
class Listeners {
  private readonly inFlight = new Set<Promise<void>>();
  private stopping = false;

  constructor(private readonly logger: Logger) {}

  wrap<A extends unknown[]>(name: string, handler: (...args: A) => Promise<void> | void) {
    return (...args: A) => {
      if (this.stopping) return;
      const run = Promise.resolve()
        .then(() => handler(...args))
        .catch((error: unknown) => this.logger.error({ err: error, event: name }, "listener failed"));
      this.inFlight.add(run);
      void run.finally(() => this.inFlight.delete(run));
    };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.allSettled([...this.inFlight]);
  }
}
