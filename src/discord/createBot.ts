import { Client, Events, GatewayIntentBits, Partials } from "discord.js";
import { commands as allCommands, type Command } from "../../commands/index.js";
import { ChatGate } from "../chatGate.js";
import type { Config } from "../config.js";
import type { Llm } from "../llm/llm.js";
import type { Logger } from "../logger.js";
import { Pipeline } from "../pipeline.js";
import type { Prompts } from "../prompts.js";
import { HistoryStore } from "../store/history.js";
import type { Store } from "../store/openStore.js";
import { SettingsStore } from "../store/settings.js";
import { ArrivalOrder } from "./arrivalOrder.js";
import { ChannelFaults } from "./channelFaults.js";
import type { BotContext } from "./context.js";
import { onInteraction } from "./onInteraction.js";
import { onMessage } from "./onMessage.js";
import { NO_MENTIONS } from "./send.js";
import type { ShardPlan } from "./shards.js";

export interface BotDeps {
  readonly llm: Llm;
  readonly store: Store;
  readonly logger: Logger;
  readonly config: Config;
  readonly prompts: Prompts;
  readonly commands?: readonly Command[];
  /** The gateway shards this process runs; one unsharded connection when absent. */
  readonly shards?: ShardPlan;
}

export interface Bot {
  readonly client: Client;
  readonly context: BotContext;
  /** Logs in; resolves once the gateway session is ready. */
  start(): Promise<void>;
  /** Stops taking events, waits for handlers in flight to finish, and closes the gateway connection. */
  stop(): Promise<void>;
}

/** Wires the bot together without connecting to anything: only `start()` does that. */
export function createBot(deps: BotDeps): Bot {
  const { config, logger } = deps;
  const pipeline = new Pipeline({
    llm: deps.llm,
    history: new HistoryStore(
      deps.store.turns,
      config.chat.historyTurns,
      logger.child({ component: "history" }),
    ),
    prompts: deps.prompts,
    config,
    logger,
  });
  const context: BotContext = {
    pipeline,
    config,
    logger,
    chatGate: new ChatGate({
      userPerMinute: config.chat.userPerMinute,
      channelPerMinute: config.chat.channelPerMinute,
      channelQueue: config.chat.channelQueue,
    }),
    channelFaults: new ChannelFaults(),
    arrivals: new ArrivalOrder(),
    moods: deps.store.moods,
    settings: new SettingsStore(deps.store.keyv, logger.child({ component: "settings" })),
    commands: deps.commands ?? allCommands,
  };
  const commands = new Map(context.commands.map((command) => [command.data.name, command]));
  const intents = [
    GatewayIntentBits.Guilds,
    GatewayIntentBits.GuildMessages,
    GatewayIntentBits.MessageContent,
  ];
  const client = new Client({
    // DM channels are not cached before their first message, so receiving DMs needs the Channel partial.
    intents: config.access.allowDms ? [...intents, GatewayIntentBits.DirectMessages] : intents,
    partials: config.access.allowDms ? [Partials.Channel] : [],
    allowedMentions: NO_MENTIONS,
    failIfNotExists: false,
    rest: { api: config.discord.apiUrl },
    shards: [...(deps.shards?.ids ?? [0])],
    shardCount: deps.shards?.count ?? 1,
  });

  const inFlight = new Set<Promise<void>>();
  let stopping = false;

  /** Every listener goes through here: its errors are logged, never thrown into discord.js's emitter. */
  const listen =
    <A extends unknown[]>(name: string, handler: (...args: A) => Promise<void> | void) =>
    (...args: A) => {
      if (stopping) return;
      const run = Promise.resolve()
        .then(() => handler(...args))
        .catch((error: unknown) => logger.error({ err: error, event: name }, "listener failed"));
      inFlight.add(run);
      void run.finally(() => inFlight.delete(run));
    };

  client.once(
    Events.ClientReady,
    listen(Events.ClientReady, (ready: Client<true>) => {
      logger.info({ user: ready.user.tag, guilds: ready.guilds.cache.size }, "connected to Discord");
    }),
  );
  client.on(
    Events.MessageCreate,
    listen(Events.MessageCreate, (message) => onMessage(message, context)),
  );
  client.on(
    Events.InteractionCreate,
    listen(Events.InteractionCreate, (interaction) => onInteraction(interaction, commands, context)),
  );
  client.on(Events.Error, (error) => logger.error({ err: error }, "discord client error"));
  client.on(Events.Warn, (message) => logger.warn({ discord: message }, "discord client warning"));
  client.on(Events.ShardDisconnect, (event, shardId) =>
    logger.warn({ shardId, code: event.code }, "gateway disconnected"),
  );
  client.on(Events.ShardResume, (shardId) => logger.info({ shardId }, "gateway resumed"));

  return {
    client,
    context,
    async start() {
      const ready = new Promise<void>((resolve) => client.once(Events.ClientReady, () => resolve()));
      await client.login(config.discord.token);
      await ready;
    },
    async stop() {
      stopping = true;
      await Promise.allSettled([...inFlight]);
      await client.destroy();
    },
  };
}
