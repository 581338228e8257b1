import { availableParallelism } from "node:os";
import { join } from "node:path";
import { section, type ValueOf, variable } from "./configSchema.js";
import {
  absoluteUrl,
  boolean,
  checkedSharding,
  existingFile,
  hostList,
  httpUrl,
  keepAlive,
  machineDefault,
  moodEmojis,
  numberVar,
  oneOf,
  onOff,
  optionalPositiveInt,
  positiveInt,
  shardCount,
  shardList,
  snowflake,
  snowflakeList,
  tcpPort,
  text,
  textOr,
} from "./configValues.js";
import { LOG_LEVELS } from "./logger.js";
import { DEFAULT_PROMPTS_DIR } from "./promptsDir.js";

/*
 * The config in one table: every environment variable moodbot reads, written once, with its parser (which carries
 * its default), the fix its error gives, and its documentation. Sections group the variables the way Config is
 * grouped, and Config's type is inferred from them (src/platform/config.ts). A machine-dependent default is computed when the
 * config is read and documented as what it is (machineDefault).
 *
 * README.md's configuration table and .env.example are generated from this table: after changing it, run
 * `npm run config:docs` to rewrite both. test/unit/configDocs.test.ts fails while either differs from the table.
 */

/** Discord's own REST base; discord.js appends the API version. */
export const DEFAULT_DISCORD_API_URL = "https://discord.com/api";
export const DEFAULT_STORE_URL = "sqlite://data/bot.sqlite";
/** prompts/tasks beside src/: the task files that ship with the bot. */
export const DEFAULT_TASKS_DIR = join(DEFAULT_PROMPTS_DIR, "tasks");
/** Discord's CDN, where attachments live. */
export const DEFAULT_ATTACHMENT_HOSTS = "cdn.discordapp.com,media.discordapp.net";
export const DEFAULT_MOOD_EMOJIS = "positive=😄,negative=😢,neutral=😐";
/** The recommended model: Qwen2.5-0.5B-Instruct, Q8_0, about 530 MB. */
export const DEFAULT_MODEL_URI = "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q8_0.gguf";
/** The compute backends: auto takes a GPU when one works, else the CPU. */
export const GPU_SETTINGS = ["auto", "cuda", "vulkan", "metal", "off"] as const;
/** The model server's protocols, or auto: detected on an authenticated route. */
export const SERVER_KIND_SETTINGS = ["auto", "llama.cpp", "vllm", "ollama", "openai"] as const;

const CHANNEL_IDS_FIX =
  "List channel ids (right-click → Copy Channel ID), e.g. 123456789012345678,223456789012345678.";

const discord = section(
  { title: "Discord" },
  {
    token: variable("DISCORD_TOKEN", textOr(""), {
      default: "(required)",
      requiredFor: ["bot", "deploy"],
      fix: "Create an application at https://discord.com/developers/applications, open Bot → Reset Token, and put the token in a .env file as DISCORD_TOKEN=… (copy .env.example to start). To try the bot without Discord, run `npm run console`.",
      doc: "The bot token: https://discord.com/developers/applications → your application → Bot → Reset Token. Required by `npm start` and `npm run deploy-commands`, not by `npm run console`.",
    }),
    clientId: variable("DISCORD_CLIENT_ID", snowflake, {
      requiredFor: ["deploy"],
      fix: "Copy the Application ID from the General Information page of your application into .env as DISCORD_CLIENT_ID=….",
      doc: "The application id (General Information → Application ID); required by `npm run deploy-commands`.",
    }),
    guildId: variable("DISCORD_GUILD_ID", snowflake, {
      fix: "Copy the server's id (right-click the server → Copy Server ID), or remove it to register commands globally.",
      doc: "Register the slash commands to this one server (at once) instead of globally (which can take an hour).",
    }),
    apiUrl: variable("DISCORD_API_URL", absoluteUrl(DEFAULT_DISCORD_API_URL), {
      fix: "Remove it to use Discord's own API.",
      doc: "The REST base URL, handed to discord.js as `rest.api`, for a REST proxy (and our tests); the gateway URL comes from `GET /gateway/bot`.",
    }),
  },
);

const inProcessModel = section(
  { title: "Model, in the bot's process", readBy: "in-process" },
  {
    path: variable("MODEL_PATH", text, {
      doc: "A local `.gguf` file. When set, nothing is downloaded; when empty, `MODEL_URI` is downloaded once into `MODELS_DIR`.",
    }),
    uri: variable("MODEL_URI", textOr(DEFAULT_MODEL_URI), {
      doc: "The model to fetch when `MODEL_PATH` is unset.",
    }),
    directory: variable("MODELS_DIR", textOr("./models"), {
      doc: "Where `MODEL_URI` is downloaded to and found again.",
    }),
    downloadTimeoutS: variable("MODEL_DOWNLOAD_TIMEOUT_S", positiveInt(60, 3600), {
      fix: "Remove it to give up a download after 60 s without progress, or raise it on a slow or flaky connection.",
      doc: "Seconds a model download may go without progress (a hub that never answers included) before the bot gives up, with one paragraph on fetching the file by hand. What arrived is kept (`<name>.ipull`) and the next start continues from it; only a finished download gets the model's name, so a partial file is never loaded.",
    }),
    threads: variable(
      "LLM_THREADS",
      positiveInt(machineDefault("the machine's CPU count", availableParallelism), 256),
      {
        fix: "Set it to the number of CPU cores, or remove it to use all of them.",
        doc: "CPU threads for the model; never more than your cores. node-llama-cpp's own default of 4 threads oversubscribes a 2-core machine and runs far slower, so moodbot always sets it.",
      },
    ),
    contextSize: variable("LLM_CONTEXT_SIZE", positiveInt(2048, 131072), {
      fix: "Remove it to use 2048, or lower it on a machine with little memory.",
      doc: "Tokens each context sequence (each sentiment sequence, one per label task, one per warm chat channel) holds. The default fits the default 12-turn history and a 400-token reply.",
    }),
    chatSequences: variable("LLM_CHAT_SEQUENCES", positiveInt(2, 16), {
      fix: "Remove it to keep 2 channels warm; each one costs a context's worth of memory.",
      doc: "Chat sequences kept warm, one per recently active channel: a follow-up there evaluates only the new turns. Replies in different channels generate side by side, up to this many at once. Each costs a context's worth of KV memory.",
    }),
    sentimentSequences: variable("LLM_SENTIMENT_SEQUENCES", positiveInt(2, 32), {
      fix: "Remove it to classify up to 2 messages per forward pass; each one costs a context's worth of memory.",
      doc: "How many queued messages one forward pass classifies together, each on its own copy of the cached prompt (copied at load through a state file instead of being evaluated again). Messages of the same length in tokens share the pass's fixed cost; others cost what they would one by one (see [docs/performance.md](docs/performance.md)). Each costs a context's worth of KV memory.",
    }),
    gpu: variable("LLM_GPU", oneOf(GPU_SETTINGS, "auto"), {
      fix: "Remove it to use a GPU when one works and the CPU otherwise, or set off to always use the CPU.",
      doc: "The compute backend: `auto` (a GPU when node-llama-cpp finds a working CUDA, Vulkan or Metal, else the CPU), `cuda`, `vulkan`, `metal` or `off` (always the CPU). A named backend that cannot start falls back to the CPU with a warning; the startup log's `backend` says which one runs. The GPU backends are untested by our CI (it has no GPU); on a machine without one, `auto` spends part of startup finding that out, and `off` skips it.",
    }),
    batchSize: variable("LLM_BATCH_SIZE", positiveInt(128, 4096), {
      fix: "Remove it to use 128, or raise it (up to LLM_CONTEXT_SIZE) on a machine with memory to spare.",
      doc: "Tokens evaluated in one forward pass. llama.cpp reserves its work memory for this many tokens' logits (0.6 MB each with a 152k vocabulary), so the default keeps the process under 1 GB; a longer prompt takes a few passes, at the same speed per token.",
    }),
  },
);

const serverModel = section(
  { title: "Model server, instead of the model in the bot's process", readBy: "server" },
  {
    url: variable("LLM_SERVER_URL", httpUrl, {
      default: "(off: the model runs in the bot's process)",
      fix: "Set it to the inference server's address, such as http://127.0.0.1:8080 for llama-server (a trailing /v1 is fine), or remove it to run the model in the bot's process.",
      doc: "An inference server to run the model on instead: llama.cpp's llama-server, vLLM, Ollama, LM Studio or any OpenAI-compatible API, with or without a trailing `/v1`, such as `http://127.0.0.1:8080`. The bot then loads no model file, and every shard can share the server. The in-process settings (the section above, and `CHAT_SPEED_FLOOR`) are ignored, with one warning naming those that are set. A server that is down or refuses the key never stops the bot: it starts not ready (`/readyz` says why) and reconnects by itself.",
    }),
    apiKey: variable("LLM_SERVER_API_KEY", text, {
      doc: "Sent as `Authorization: Bearer …` on every request to the server. Never logged.",
    }),
    kind: variable("LLM_SERVER_KIND", oneOf(SERVER_KIND_SETTINGS, "auto"), {
      fix: "Remove it to detect the server's kind, or name it: llama.cpp (llama-server), vllm, ollama, or openai for any other OpenAI-compatible API (LM Studio, a hosted one).",
      doc: "The server's protocol: `auto` (detected on an authenticated route), `llama.cpp`, `vllm`, `ollama`, or `openai` (LM Studio and other OpenAI-compatible APIs).",
    }),
    model: variable("LLM_SERVER_MODEL", text, {
      default: "the one the server names",
      doc: "The served model to use, where the server serves several.",
    }),
    maxInFlight: variable("LLM_SERVER_MAX_IN_FLIGHT", optionalPositiveInt(1024), {
      default: "from the server",
      fix: "Remove it to take llama-server's slot count (or the default for the server's kind), or set how many requests the server decodes side by side.",
      doc: "Requests in flight at once: llama-server's slot count (`total_slots` in `/props`), else a default for the kind (Ollama: 1, as it serves one request at a time unless `OLLAMA_NUM_PARALLEL` says more).",
    }),
    timeoutMs: variable("LLM_SERVER_TIMEOUT_MS", positiveInt(60_000, 3_600_000), {
      fix: "Remove it to give each request to the server 60000 ms.",
      doc: "Each request's deadline, in milliseconds.",
    }),
    streamIdleMs: variable("LLM_SERVER_STREAM_IDLE_MS", positiveInt(30_000, 3_600_000), {
      fix: "Remove it to give up on a streamed reply silent for 30000 ms.",
      doc: "The longest silence in a streamed reply before it is given up, in milliseconds.",
    }),
    chatTemplatePath: variable("LLM_SERVER_CHAT_TEMPLATE", existingFile, {
      fix: "Point it at the served model's Jinja chat template (a .jinja file, or the chat_template of its tokenizer_config.json saved as one), or remove it where the server exposes the template (llama-server does).",
      doc: "A Jinja chat template file, for servers that do not expose the served model's own (llama-server does, in `/props`): the bot renders every prompt with it.",
    }),
    priorities: variable("LLM_SERVER_PRIORITIES", onOff("off"), {
      serverKind: "vllm",
      fix: "Set it to on only for a vLLM started with --scheduling-policy priority (vLLM refuses a request's priority otherwise), or remove it to leave it off.",
      doc: "vLLM only: `on` when vLLM runs with `--scheduling-policy priority`, so each request carries its priority and mentions and commands go before background work in vLLM's own queue. vLLM refuses a priority without that policy.",
    }),
    numCtx: variable("LLM_SERVER_NUM_CTX", optionalPositiveInt(1_048_576), {
      serverKind: "ollama",
      default: "the Modelfile's `num_ctx`, else `4096`",
      fix: "Remove it to ask Ollama for the model's Modelfile num_ctx (else 4096), or set the context of one conversation in tokens.",
      doc: "Ollama only: `num_ctx`, the context of one conversation in tokens, asked for on every request (never above what the model was trained on).",
    }),
    keepAlive: variable("LLM_SERVER_KEEP_ALIVE", keepAlive, {
      serverKind: "ollama",
      default: "Ollama's own (5 minutes, or `OLLAMA_KEEP_ALIVE`)",
      fix: "Remove it to keep Ollama's own (an idle model is unloaded after 5 minutes), or set a duration such as 30m or 1h, a number of seconds, or -1 to keep the model loaded.",
      doc: "Ollama only: `keep_alive`, how long an idle model stays loaded: a duration such as `30m`, a number of seconds, or `-1` to keep it loaded.",
    }),
  },
);

/** The model in the bot's own process, through node-llama-cpp. */
export type InProcessModelConfig = { readonly runtime: "in-process" } & ValueOf<typeof inProcessModel>;
/** The model on an inference server (llama-server, vLLM, Ollama, an OpenAI-compatible API). */
export type ServerModelConfig = { readonly runtime: "server"; readonly url: string } & Omit<
  ValueOf<typeof serverModel>,
  "url"
>;
export type ModelConfig = InProcessModelConfig | ServerModelConfig;

const sentiment = section(
  { title: "Mood reactions" },
  {
    queueSize: variable("SENTIMENT_QUEUE_SIZE", positiveInt(64, 100_000), {
      fix: "Remove it to queue at most 64 mood reactions.",
      doc: "Mood reactions waiting beyond this many are dropped, oldest first (counted, logged at debug).",
    }),
    maxWaitMs: variable("SENTIMENT_MAX_WAIT_MS", positiveInt(30_000, 3_600_000), {
      fix: "Remove it to drop reactions that waited over 30000 ms.",
      doc: "A mood reaction that waited longer than this many milliseconds is dropped: a late reaction is noise.",
    }),
    cacheSize: variable("SENTIMENT_CACHE_SIZE", numberVar(1000, { min: 0, max: 1_000_000, whole: true }), {
      fix: "Remove it to cache 1000 results, or set 0 to turn the cache off.",
      doc: 'Results kept for repeated short messages ("ok", "lol", "哈哈"); `0` turns the cache off.',
    }),
    neutralThreshold: variable(
      "SENTIMENT_NEUTRAL_THRESHOLD",
      numberVar(0, { min: 0, max: 1, belowMax: true }),
      {
        default: "`0` (off)",
        fix: "Remove it to turn the threshold off, or run `npm run eval` to choose one for your model.",
        doc: "Below this confidence (0 to 1) a message counts as neutral, so the bot does not react with a strong mood when unsure. Choose it for your model with `npm run eval -- --model your.gguf` (see [docs/quality.md](docs/quality.md)).",
      },
    ),
    /** The result cache shared by every process when the store is Redis. */
    sharedCache: section(
      {},
      {
        size: variable(
          "SENTIMENT_SHARED_CACHE_SIZE",
          numberVar(100_000, { min: 0, max: 10_000_000, whole: true }),
          {
            fix: "Remove it to share up to 100000 results through Redis, or set 0 to keep the cache per process.",
            doc: "With `STORE_URL` on Redis, every shard and process shares one result cache behind its own, keyed by a hash of the normalised text, the model and the prompt, holding only labels and probabilities; at most this many entries. `0` turns it off.",
          },
        ),
        ttlSeconds: variable("SENTIMENT_SHARED_CACHE_TTL_S", positiveInt(604_800, 31_536_000), {
          default: "`604800` (7 days)",
          fix: "Remove it to keep shared results for 7 days (604800 s).",
          doc: "Seconds a shared result is kept.",
        }),
        budgetMs: variable("SENTIMENT_SHARED_CACHE_BUDGET_MS", positiveInt(20, 1_000), {
          fix: "Remove it to wait at most 20 ms for the shared cache before asking the model.",
          doc: "Longest wait, in milliseconds, for the shared cache before the model classifies the message instead: a slow or unreachable Redis never delays a reaction by more.",
        }),
      },
    ),
  },
);

const emojis = section(
  { inline: true },
  {
    moodEmojis: variable("MOOD_EMOJIS", moodEmojis(DEFAULT_MOOD_EMOJIS), {
      fix: `Use the form ${DEFAULT_MOOD_EMOJIS}; leave an emoji empty (neutral=) to skip that label.`,
      doc: "The emoji for each label, as label=emoji. Leave one empty (`neutral=`) to never react with that label. Custom server emojis work too: `positive=<:yay:123456789012345678>`.",
    }),
  },
);

const chat = section(
  { title: "Conversation" },
  {
    historyTurns: variable("CHAT_HISTORY_TURNS", positiveInt(12, 200), {
      fix: "Remove it to keep the last 12 turns.",
      doc: "Turns of channel history kept and shown to the model (also trimmed to fit the context).",
    }),
    historyTtlDays: variable("CHAT_HISTORY_TTL_DAYS", positiveInt(30, 3650), {
      fix: "Remove it to keep each turn and per-member mood count for 30 days, or set a whole number of days from 1.",
      doc: "Days each stored chat turn, and each member's daily mood count, is kept from its own time; then it leaves the store. `/privacy show` tells members this number (see [docs/privacy.md](docs/privacy.md)).",
    }),
    maxReplyTokens: variable("CHAT_MAX_TOKENS", positiveInt(400, 4096), {
      fix: "Remove it to cap replies at 400 tokens.",
      doc: "Longest reply, in tokens.",
    }),
    temperature: variable("CHAT_TEMPERATURE", numberVar(0.7, { min: 0, max: 2 }), {
      fix: "Remove it to use 0.7.",
      doc: "Reply sampling temperature, 0 to 2.",
    }),
    userPerMinute: variable("CHAT_USER_PER_MINUTE", positiveInt(6, 10_000), {
      fix: "Remove it to allow 6 chat turns per user per minute.",
      doc: "Chat turns one user may start per minute, across channels. Past it: one short notice, and no model work.",
    }),
    channelPerMinute: variable("CHAT_CHANNEL_PER_MINUTE", positiveInt(20, 10_000), {
      fix: "Remove it to allow 20 chat turns per channel per minute.",
      doc: "Chat turns one channel may have per minute, all users together; past it, the same notice.",
    }),
    streamEditMs: variable("CHAT_STREAM_EDIT_MS", numberVar(1000, { min: 100, max: 60_000, whole: true }), {
      fix: "Remove it to edit a streaming reply at most once a second (Discord's rate limits like that).",
      doc: "Replies stream: posted as soon as there is text, then edited at most once per this many milliseconds.",
    }),
    forgetRoleIds: variable("CHAT_FORGET_ROLES", snowflakeList, {
      fix: "List role ids (right-click a role → Copy Role ID), e.g. 123456789012345678.",
      doc: "Role ids, separated by commas, that may use `/forget` besides members with Manage Messages.",
    }),
    channelQueue: variable("CHAT_CHANNEL_QUEUE", numberVar(3, { min: 0, max: 50, whole: true }), {
      fix: "Remove it to let 3 mentions wait per channel, or set 0 to refuse while busy.",
      doc: 'Mentions that wait their turn in a channel while the bot answers there. They are answered in order, each prompt holding the reply before it, and count toward the rate limits. Beyond them, one short "busy" notice. `0` refuses while busy.',
    }),
    speedFloor: variable("CHAT_SPEED_FLOOR", numberVar(0.35, { min: 0.05, max: 1 }), {
      readBy: "in-process",
      fix: "Remove it to keep streaming replies at 35% of full speed or more while reactions are queued; raise it to favour chat.",
      doc: "While mood reactions are queued, a streaming reply keeps at least this share (0.05 to 1) of its speed alone; reactions fill the rest of each forward pass. Raise it to favour chat, lower it to favour reactions. Ignored when the model runs on a server.",
    }),
  },
);

const access = section(
  { title: "Access" },
  {
    allowDms: variable("ALLOW_DMS", boolean, {
      fix: "Use true to answer direct messages, or remove it to ignore them.",
      doc: "`true` to react to and answer direct messages (no mention needed there). Adds the Direct Messages intent.",
    }),
    channelAllowlist: variable("CHANNEL_ALLOWLIST", snowflakeList, {
      fix: CHANNEL_IDS_FIX,
      doc: "Channel ids, separated by commas: when set, only these channels (and their threads) get reactions and replies.",
    }),
    channelDenylist: variable("CHANNEL_DENYLIST", snowflakeList, {
      fix: CHANNEL_IDS_FIX,
      doc: "Channel ids, separated by commas, that never get reactions or replies. Slash commands work everywhere; restrict them in Server Settings → Integrations.",
    }),
  },
);

const sharding = section(
  { title: "Scale" },
  {
    count: variable("SHARD_COUNT", shardCount, {
      fix: "Use auto, a number such as 2, or remove it to run one connection without sharding.",
      doc: "Total gateway shards: `auto` (Discord's recommendation) or a number. Unset: one unsharded connection.",
    }),
    ids: variable("SHARD_IDS", shardList, {
      default: "all",
      fix: "List the shards this process runs, such as 0,1; each must be below SHARD_COUNT.",
      doc: "The shards this process runs, e.g. `0,1`, so several machines can split one bot.",
    }),
    fromManager: variable("SHARDS", shardList, {
      fix: "This is set by npm run start:sharded; use SHARD_IDS to choose shards yourself.",
      doc: "Set by `npm run start:sharded` for each child process (a number or a JSON array); leave it empty and use `SHARD_IDS`, which wins.",
    }),
  },
  ({ count, ids, fromManager }, fields) =>
    checkedSharding(ids ?? fromManager, count, { ids: fields.ids.name, count: fields.count.name }),
);

const prompts = section(
  { title: "Prompts and tasks", inline: true },
  {
    promptsDir: variable("PROMPTS_DIR", text, {
      default: "`prompts/` beside `src/`",
      doc: "The folder of the prompt files (`sentiment-*.txt`, `chat-system.txt`).",
    }),
    tasksDir: variable("TASKS_DIR", text, {
      default: "`tasks/` in `PROMPTS_DIR`",
      doc: "The folder of prompt-defined tasks: each JSON file there becomes a slash command.",
    }),
  },
  ({ promptsDir, tasksDir }) => ({
    promptsDir: promptsDir ?? DEFAULT_PROMPTS_DIR,
    // A prompts folder of one's own brings its tasks along.
    tasksDir: tasksDir ?? (promptsDir === undefined ? DEFAULT_TASKS_DIR : join(promptsDir, "tasks")),
  }),
);

/** How prompts are reloaded while the bot runs: always on SIGHUP, and on file changes when `watch` is on. */
const reload = section(
  {},
  {
    watch: variable("PROMPTS_WATCH", boolean, {
      fix: "Use true to reload the prompts when a file in PROMPTS_DIR changes, or remove it.",
      doc: "SIGHUP to the node process reloads the prompts and tasks without dropping the gateway; `true` also reloads them when a file in their folders changes (debounced). See [Operations](docs/operations.md#reloading-prompts-without-a-restart).",
    }),
    registerGlobally: variable("RELOAD_REGISTER_COMMANDS", boolean, {
      fix: "Use true to register changed commands globally on a reload, or remove it to register them only in DISCORD_GUILD_ID.",
      doc: "A reload registers changed commands in `DISCORD_GUILD_ID` when that is set; `true` registers them globally too (Discord can take an hour to show global changes).",
    }),
  },
);

const attachments = section(
  { title: "Attachments" },
  {
    hosts: variable("ATTACHMENT_HOSTS", hostList(DEFAULT_ATTACHMENT_HOSTS), {
      fix: "List host names such as cdn.discordapp.com,media.discordapp.net, or remove it for Discord's CDN.",
      doc: "Text attachments (text, markdown, logs, source code) are read with a mention and with `/summarize` and `/keywords`, as far as the message's room in the prompt holds (a quarter of `LLM_CONTEXT_SIZE` for a mention, with its text). Only these hosts are fetched, and a redirect to any other host is never followed.",
    }),
    timeoutMs: variable("ATTACHMENT_TIMEOUT_MS", positiveInt(5000, 60_000), {
      fix: "Remove it to give each attachment download 5000 ms.",
      doc: "Longest wait, in milliseconds, for one attachment; a slow or failed download is named in the prompt, never read. A message's files are fetched one after another, each only as far as the room the ones before it left.",
    }),
  },
);

const moderation = section(
  { title: "Moderation (set up per server with `/settings moderation`)" },
  {
    alertsPerHour: variable("MODERATION_ALERTS_PER_HOUR", positiveInt(20, 1000), {
      fix: "Remove it to post at most 20 moderation alerts per channel per hour, or set another whole number from 1.",
      doc: "Moderation alerts posted per covered channel per hour; beyond it they are counted in `/metrics`, not posted.",
    }),
  },
);

/** The health and metrics HTTP server; off when `port` is undefined. */
const metrics = section(
  { title: "Health and metrics" },
  {
    port: variable("METRICS_PORT", tcpPort, {
      default: "(off)",
      fix: "Use a free port such as 9464 to serve /healthz, /readyz and /metrics, or remove it to turn them off.",
      doc: "Serve `GET /healthz`, `/readyz` and `/metrics` (Prometheus) on this port, such as `9464`. Under `npm run start:sharded` each shard process takes this port + its index (9464, 9465, …).",
    }),
    host: variable("METRICS_HOST", textOr("127.0.0.1"), {
      doc: "The address that server listens on; `0.0.0.0` lets other hosts and containers scrape it.",
    }),
  },
);

const consoleSettings = section(
  { title: "Console", inline: true },
  {
    consoleSettingsFile: variable("CONSOLE_SETTINGS", text, {
      doc: 'For `npm run console` only: a JSON file of `/settings` keys (emojis, persona, language, …), such as `{"persona": "You are a pirate.", "language": "zh"}`.',
    }),
  },
);

const store = section(
  { title: "Storage", inline: true },
  {
    storeUrl: variable("STORE_URL", textOr(DEFAULT_STORE_URL), {
      doc: "A Keyv connection string: `sqlite://path/to/file.sqlite` for one process (the folder is created), or `redis://host:6379` to share history between shards and machines (turn on Redis persistence, `appendonly yes`, so history survives a Redis restart).",
    }),
  },
);

const logging = section(
  { title: "Logging", inline: true },
  {
    logLevel: variable("LOG_LEVEL", oneOf(LOG_LEVELS, "info"), {
      fix: "Remove it to log at info.",
      doc: "The pino level: fatal, error, warn, info, debug, trace or silent.",
    }),
    logPretty: variable("LOG_PRETTY", boolean, {
      fix: "Use true only in development; it needs the pino-pretty dev dependency.",
      doc: "`true` for human-readable logs through pino-pretty, in development only (it is a dev dependency); JSON lines otherwise.",
    }),
  },
);

/** Every variable moodbot reads, in Config's shape. */
export const CONFIG_TABLE = {
  discord,
  /** Where the model runs (in this process, or on an inference server) and that runtime's settings. */
  model: section(
    {},
    { inProcess: inProcessModel, server: serverModel },
    ({ inProcess, server }): ModelConfig =>
      server.url === undefined
        ? { runtime: "in-process", ...inProcess }
        : { runtime: "server", ...server, url: server.url },
  ),
  sentiment,
  emojis,
  chat,
  access,
  sharding,
  prompts,
  reload,
  attachments,
  moderation,
  metrics,
  consoleSettings,
  store,
  logging,
};
