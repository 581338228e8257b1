import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseEnv } from "node:util";
import { z } from "zod";
import {
  boolean,
  checkedSharding,
  deepFreeze,
  hostList,
  numberVar,
  oneOf,
  optionalText,
  positiveInt,
  shardCount,
  shardList,
  snowflake,
  snowflakeList,
  tcpPort,
} from "./configValues.js";
import { ConfigError } from "./errors.js";
import { LOG_LEVELS, type LogLevel } from "./logger.js";
import {
  forChosenRuntime,
  type InProcessModelConfig,
  MODEL_ENV,
  MODEL_FIXES,
  type ModelConfig,
  modelConfigOf,
} from "./modelConfig.js";
import { DEFAULT_PROMPTS_DIR } from "./prompts.js";
import { type EmojiMap, parseMoodEmojis } from "./sentimentLabels.js";

/** Discord's own REST base; discord.js appends the API version. */
export const DEFAULT_DISCORD_API_URL = "https://discord.com/api";
export const DEFAULT_STORE_URL = "sqlite://data/bot.sqlite";
/** prompts/tasks beside src/: the task files that ship with the bot. */
export const DEFAULT_TASKS_DIR = join(DEFAULT_PROMPTS_DIR, "tasks");
/** Discord's CDN, where attachments live. */
export const DEFAULT_ATTACHMENT_HOSTS = "cdn.discordapp.com,media.discordapp.net";
export const DEFAULT_MOOD_EMOJIS = "positive=😄,negative=😢,neutral=😐";

export {
  DEFAULT_MODEL_URI,
  type GpuSetting,
  type InProcessModelConfig,
  inProcessConfig,
  type ModelConfig,
  type ServerKindSetting,
  type ServerModelConfig,
} from "./modelConfig.js";

export interface Config {
  readonly discord: {
    readonly token: string;
    readonly clientId: string | undefined;
    readonly guildId: string | undefined;
    readonly apiUrl: string;
  };
  /** Where the model runs (in this process, or on an inference server) and that runtime's settings. */
  readonly model: ModelConfig;
  readonly sentiment: {
    /** Mood reactions waiting beyond this many are shed, oldest first. */
    readonly queueSize: number;
    /** A mood reaction that waited longer than this is shed: a late reaction is noise. */
    readonly maxWaitMs: number;
    /** Results kept for repeated short messages; 0 turns the cache off. */
    readonly cacheSize: number;
    /** Below this confidence a message counts as neutral; 0 turns it off. */
    readonly neutralThreshold: number;
    /** The result cache shared by every process when the store is Redis; a size of 0 turns it off. */
    readonly sharedCache: {
      readonly size: number;
      readonly ttlSeconds: number;
      readonly budgetMs: number;
    };
  };
  readonly chat: {
    readonly historyTurns: number;
    /** Days each stored turn and per-member mood count is kept from its own time. */
    readonly historyTtlDays: number;
    readonly maxReplyTokens: number;
    readonly temperature: number;
    /** Chat turns one user may start per minute, across channels. */
    readonly userPerMinute: number;
    /** Chat turns one channel may have per minute, all users together. */
    readonly channelPerMinute: number;
    /** A streaming reply is edited at most once per this many milliseconds. */
    readonly streamEditMs: number;
    /** Roles that may use /forget besides members with Manage Messages. */
    readonly forgetRoleIds: ReadonlySet<string>;
    /** Mentions that wait in a channel while the bot is answering there; beyond them, a short busy notice. */
    readonly channelQueue: number;
    /** While reactions are queued, a streaming reply keeps at least this share of its speed alone. */
    readonly speedFloor: number;
  };
  readonly access: {
    /** Direct messages are off unless turned on. */
    readonly allowDms: boolean;
    /** When not empty, only these channels get reactions and replies. */
    readonly channelAllowlist: ReadonlySet<string>;
    /** These channels never get reactions or replies. */
    readonly channelDenylist: ReadonlySet<string>;
  };
  readonly sharding: {
    /** Total shards: a number, "auto" (Discord's recommendation), or undefined for one unsharded connection. */
    readonly count: number | "auto" | undefined;
    /** The shards this process runs; undefined means all of them. */
    readonly ids: readonly number[] | undefined;
  };
  /** The folder of the prompt files (prompts/ by default). */
  readonly promptsDir: string;
  /** The folder of prompt-defined task files. */
  readonly tasksDir: string;
  /** How prompts are reloaded while the bot runs: always on SIGHUP, and on file changes when `watch` is on. */
  readonly reload: {
    readonly watch: boolean;
    /** Register changed commands globally on a reload even without DISCORD_GUILD_ID. */
    readonly registerGlobally: boolean;
  };
  /** Text attachments read with a mention or a channel task. */
  readonly attachments: {
    /** Host names attachments are fetched from: Discord's CDN. */
    readonly hosts: ReadonlySet<string>;
    readonly timeoutMs: number;
  };
  /** Local moderation (set up per server with /settings moderation). */
  readonly moderation: {
    /** Alerts posted per covered channel per hour; beyond it they are counted, not posted. */
    readonly alertsPerHour: number;
  };
  /** The health and metrics HTTP server; off when `port` is undefined. */
  readonly metrics: {
    readonly port: number | undefined;
    readonly host: string;
  };
  /** `npm run console`'s settings file (the /settings keys as JSON), if any. */
  readonly consoleSettingsFile: string | undefined;
  readonly storeUrl: string;
  readonly moodEmojis: EmojiMap;
  readonly logLevel: LogLevel;
  readonly logPretty: boolean;
  /** Sentences for the log at startup: settings that were given and are ignored. */
  readonly warnings: readonly string[];
}

/** A config whose model runs in this process: what the tools that measure that runtime itself are given. */
export type InProcessConfig = Config & { readonly model: InProcessModelConfig };

/** Which parts of the config a caller needs: the console and deploy-commands need no Discord token or no model. */
export type ConfigPurpose = "bot" | "console" | "deploy" | "model";

const TOKEN_HELP =
  "Create an application at https://discord.com/developers/applications, open Bot → Reset Token, and put the token in a .env file as DISCORD_TOKEN=… (copy .env.example to start). To try the bot without Discord, run `npm run console`.";

const envSchema = z.object({
  DISCORD_TOKEN: optionalText,
  DISCORD_CLIENT_ID: snowflake,
  DISCORD_GUILD_ID: snowflake,
  DISCORD_API_URL: optionalText.refine((raw) => raw === undefined || URL.canParse(raw), {
    message: "must be an absolute URL such as https://discord.com/api",
  }),
  ...MODEL_ENV,
  SENTIMENT_QUEUE_SIZE: positiveInt(64, 100_000),
  SENTIMENT_MAX_WAIT_MS: positiveInt(30_000, 3_600_000),
  SENTIMENT_CACHE_SIZE: numberVar(1000, { min: 0, max: 1_000_000, whole: true }),
  SENTIMENT_SHARED_CACHE_SIZE: numberVar(100_000, { min: 0, max: 10_000_000, whole: true }),
  SENTIMENT_SHARED_CACHE_TTL_S: positiveInt(604_800, 31_536_000),
  SENTIMENT_SHARED_CACHE_BUDGET_MS: positiveInt(20, 1_000),
  CHAT_HISTORY_TURNS: positiveInt(12, 200),
  CHAT_HISTORY_TTL_DAYS: positiveInt(30, 3650),
  MODERATION_ALERTS_PER_HOUR: positiveInt(20, 1000),
  CHAT_MAX_TOKENS: positiveInt(400, 4096),
  CHAT_TEMPERATURE: numberVar(0.7, { min: 0, max: 2 }),
  SENTIMENT_NEUTRAL_THRESHOLD: numberVar(0, { min: 0, max: 1, belowMax: true }),
  CHAT_STREAM_EDIT_MS: numberVar(1000, { min: 100, max: 60_000, whole: true }),
  CHAT_FORGET_ROLES: snowflakeList,
  CHAT_USER_PER_MINUTE: positiveInt(6, 10_000),
  CHAT_CHANNEL_PER_MINUTE: positiveInt(20, 10_000),
  CHAT_CHANNEL_QUEUE: numberVar(3, { min: 0, max: 50, whole: true }),
  CHAT_SPEED_FLOOR: numberVar(0.35, { min: 0.05, max: 1 }),
  ALLOW_DMS: boolean,
  CHANNEL_ALLOWLIST: snowflakeList,
  CHANNEL_DENYLIST: snowflakeList,
  SHARD_COUNT: shardCount,
  SHARD_IDS: shardList,
  // Set by discord.js's ShardingManager for each child process (a number or a JSON array); SHARD_IDS wins.
  SHARDS: shardList,
  PROMPTS_DIR: optionalText,
  TASKS_DIR: optionalText,
  PROMPTS_WATCH: boolean,
  RELOAD_REGISTER_COMMANDS: boolean,
  METRICS_PORT: tcpPort,
  METRICS_HOST: optionalText,
  ATTACHMENT_HOSTS: hostList(DEFAULT_ATTACHMENT_HOSTS),
  ATTACHMENT_TIMEOUT_MS: positiveInt(5000, 60_000),
  CONSOLE_SETTINGS: optionalText,
  STORE_URL: optionalText,
  MOOD_EMOJIS: z.string().optional(),
  LOG_LEVEL: oneOf(LOG_LEVELS, "info"),
  LOG_PRETTY: boolean,
});

/** Every variable moodbot reads; .env.example documents each one. */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(envSchema.shape);

const FIXES: Record<string, string> = {
  ...MODEL_FIXES,
  SENTIMENT_QUEUE_SIZE: "Remove it to queue at most 64 mood reactions.",
  SENTIMENT_MAX_WAIT_MS: "Remove it to drop reactions that waited over 30000 ms.",
  SENTIMENT_CACHE_SIZE: "Remove it to cache 1000 results, or set 0 to turn the cache off.",
  SENTIMENT_SHARED_CACHE_SIZE:
    "Remove it to share up to 100000 results through Redis, or set 0 to keep the cache per process.",
  SENTIMENT_SHARED_CACHE_TTL_S: "Remove it to keep shared results for 7 days (604800 s).",
  SENTIMENT_SHARED_CACHE_BUDGET_MS:
    "Remove it to wait at most 20 ms for the shared cache before asking the model.",
  CHAT_CHANNEL_QUEUE: "Remove it to let 3 mentions wait per channel, or set 0 to refuse while busy.",
  CHAT_SPEED_FLOOR:
    "Remove it to keep streaming replies at 35% of full speed or more while reactions are queued; raise it to favour chat.",
  SENTIMENT_NEUTRAL_THRESHOLD:
    "Remove it to turn the threshold off, or run `npm run eval` to choose one for your model.",
  CHAT_HISTORY_TURNS: "Remove it to keep the last 12 turns.",
  MODERATION_ALERTS_PER_HOUR:
    "Remove it to post at most 20 moderation alerts per channel per hour, or set another whole number from 1.",
  CHAT_HISTORY_TTL_DAYS:
    "Remove it to keep each turn and per-member mood count for 30 days, or set a whole number of days from 1.",
  CHAT_MAX_TOKENS: "Remove it to cap replies at 400 tokens.",
  CHAT_TEMPERATURE: "Remove it to use 0.7.",
  DISCORD_API_URL: "Remove it to use Discord's own API.",
  LOG_LEVEL: "Remove it to log at info.",
  LOG_PRETTY: "Use true only in development; it needs the pino-pretty dev dependency.",
  CHAT_USER_PER_MINUTE: "Remove it to allow 6 chat turns per user per minute.",
  CHAT_CHANNEL_PER_MINUTE: "Remove it to allow 20 chat turns per channel per minute.",
  CHAT_STREAM_EDIT_MS:
    "Remove it to edit a streaming reply at most once a second (Discord's rate limits like that).",
  CHAT_FORGET_ROLES: "List role ids (right-click a role → Copy Role ID), e.g. 123456789012345678.",
  ALLOW_DMS: "Use true to answer direct messages, or remove it to ignore them.",
  SHARD_COUNT: "Use auto, a number such as 2, or remove it to run one connection without sharding.",
  SHARD_IDS: "List the shards this process runs, such as 0,1; each must be below SHARD_COUNT.",
  SHARDS: "This is set by npm run start:sharded; use SHARD_IDS to choose shards yourself.",
  ATTACHMENT_HOSTS:
    "List host names such as cdn.discordapp.com,media.discordapp.net, or remove it for Discord's CDN.",
  ATTACHMENT_TIMEOUT_MS: "Remove it to give each attachment download 5000 ms.",
  METRICS_PORT:
    "Use a free port such as 9464 to serve /healthz, /readyz and /metrics, or remove it to turn them off.",
  PROMPTS_WATCH: "Use true to reload the prompts when a file in PROMPTS_DIR changes, or remove it.",
  RELOAD_REGISTER_COMMANDS:
    "Use true to register changed commands globally on a reload, or remove it to register them only in DISCORD_GUILD_ID.",
  CHANNEL_ALLOWLIST:
    "List channel ids (right-click → Copy Channel ID), e.g. 123456789012345678,223456789012345678.",
  CHANNEL_DENYLIST:
    "List channel ids (right-click → Copy Channel ID), e.g. 123456789012345678,223456789012345678.",
};

/** Reads `.env` (if present) under the real environment, which wins. */
export function readEnvironment(
  processEnv: NodeJS.ProcessEnv = process.env,
  envFile = ".env",
): Record<string, string | undefined> {
  const fromFile = existsSync(envFile) ? parseEnv(readFileSync(envFile, "utf8")) : {};
  return { ...fromFile, ...processEnv };
}

type Env = z.infer<typeof envSchema>;

/**
 * Parses the environment once into a frozen Config. Throws a ConfigError naming the first bad variable and its fix.
 */
export function loadConfig(
  env: Record<string, string | undefined> = readEnvironment(),
  purpose: ConfigPurpose = "bot",
): Config {
  const chosen = forChosenRuntime(env);
  const e = parseEnvironment(chosen.env);
  requireDiscordIds(e, purpose);
  const sharding = checkedSharding(e.SHARD_IDS ?? e.SHARDS, e.SHARD_COUNT);
  const moodEmojis = moodEmojisOf(e);
  return deepFreeze({
    discord: {
      token: e.DISCORD_TOKEN ?? "",
      clientId: e.DISCORD_CLIENT_ID,
      guildId: e.DISCORD_GUILD_ID,
      apiUrl: (e.DISCORD_API_URL ?? DEFAULT_DISCORD_API_URL).replace(/\/+$/, ""),
    },
    model: modelConfigOf(e),
    sentiment: {
      queueSize: e.SENTIMENT_QUEUE_SIZE,
      maxWaitMs: e.SENTIMENT_MAX_WAIT_MS,
      cacheSize: e.SENTIMENT_CACHE_SIZE,
      neutralThreshold: e.SENTIMENT_NEUTRAL_THRESHOLD,
      sharedCache: {
        size: e.SENTIMENT_SHARED_CACHE_SIZE,
        ttlSeconds: e.SENTIMENT_SHARED_CACHE_TTL_S,
        budgetMs: e.SENTIMENT_SHARED_CACHE_BUDGET_MS,
      },
    },
    chat: {
      historyTurns: e.CHAT_HISTORY_TURNS,
      historyTtlDays: e.CHAT_HISTORY_TTL_DAYS,
      maxReplyTokens: e.CHAT_MAX_TOKENS,
      temperature: e.CHAT_TEMPERATURE,
      userPerMinute: e.CHAT_USER_PER_MINUTE,
      channelPerMinute: e.CHAT_CHANNEL_PER_MINUTE,
      streamEditMs: e.CHAT_STREAM_EDIT_MS,
      forgetRoleIds: e.CHAT_FORGET_ROLES,
      channelQueue: e.CHAT_CHANNEL_QUEUE,
      speedFloor: e.CHAT_SPEED_FLOOR,
    },
    access: {
      allowDms: e.ALLOW_DMS,
      channelAllowlist: e.CHANNEL_ALLOWLIST,
      channelDenylist: e.CHANNEL_DENYLIST,
    },
    sharding,
    promptsDir: e.PROMPTS_DIR ?? DEFAULT_PROMPTS_DIR,
    // A prompts folder of one's own brings its tasks along.
    tasksDir: e.TASKS_DIR ?? (e.PROMPTS_DIR === undefined ? DEFAULT_TASKS_DIR : join(e.PROMPTS_DIR, "tasks")),
    reload: { watch: e.PROMPTS_WATCH, registerGlobally: e.RELOAD_REGISTER_COMMANDS },
    metrics: { port: e.METRICS_PORT, host: e.METRICS_HOST ?? "127.0.0.1" },
    moderation: { alertsPerHour: e.MODERATION_ALERTS_PER_HOUR },
    attachments: { hosts: e.ATTACHMENT_HOSTS, timeoutMs: e.ATTACHMENT_TIMEOUT_MS },
    consoleSettingsFile: e.CONSOLE_SETTINGS,
    storeUrl: e.STORE_URL ?? DEFAULT_STORE_URL,
    moodEmojis,
    logLevel: e.LOG_LEVEL,
    logPretty: e.LOG_PRETTY,
    warnings: chosen.warnings,
  });
}

/** Every variable checked against the schema; the first bad one becomes a ConfigError with its fix. */
function parseEnvironment(env: Record<string, string | undefined>): Env {
  const parsed = envSchema.safeParse(env);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const variable = String(issue?.path[0] ?? "environment");
  throw new ConfigError(variable, issue?.message ?? "is invalid", FIXES[variable] ?? "See .env.example.");
}

/** The bot needs its token; deploy-commands also needs the application id. The console needs neither. */
function requireDiscordIds(e: Env, purpose: ConfigPurpose): void {
  if ((purpose === "bot" || purpose === "deploy") && e.DISCORD_TOKEN === undefined) {
    throw new ConfigError("DISCORD_TOKEN", "is not set", TOKEN_HELP);
  }
  if (purpose === "deploy" && e.DISCORD_CLIENT_ID === undefined) {
    throw new ConfigError(
      "DISCORD_CLIENT_ID",
      "is not set",
      "Copy the Application ID from the General Information page of your application into .env as DISCORD_CLIENT_ID=….",
    );
  }
}

function moodEmojisOf(e: Env): EmojiMap {
  try {
    return parseMoodEmojis(e.MOOD_EMOJIS?.trim() ? e.MOOD_EMOJIS : DEFAULT_MOOD_EMOJIS);
  } catch (error) {
    throw new ConfigError(
      "MOOD_EMOJIS",
      `is invalid: ${error instanceof Error ? error.message : String(error)}`,
      `Use the form ${DEFAULT_MOOD_EMOJIS}; leave an emoji empty (neutral=) to skip that label.`,
    );
  }
}

/**
 * What the config holds that must never be logged: the bot token, the model server's API key, and the user names
 * and passwords in the store's and the model server's URLs.
 */
export function configSecrets(config: Config): string[] {
  const secrets = [config.discord.token];
  const urls = [config.storeUrl];
  if (config.model.runtime === "server") {
    secrets.push(config.model.apiKey ?? "");
    urls.push(config.model.url);
  }
  for (const url of urls) {
    try {
      const { username, password } = new URL(url);
      for (const part of [password, username]) {
        if (part !== "") secrets.push(part, decodeURIComponent(part));
      }
    } catch {
      // A sqlite:// path is not always a valid URL, and carries no credentials.
    }
  }
  return secrets.filter((secret) => secret !== "");
}
