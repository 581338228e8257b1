import { readFileSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  configSecrets,
  DEFAULT_DISCORD_API_URL,
  DEFAULT_MODEL_URI,
  inProcessConfig,
  loadConfig,
  readEnvironment,
} from "../../src/platform/config.js";
import { ConfigError } from "../../src/platform/errors.js";

const base = { DISCORD_TOKEN: "t.o.k" };

function configError(
  env: Record<string, string | undefined>,
  purpose?: "bot" | "console" | "deploy",
): ConfigError {
  try {
    loadConfig(env, purpose);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  it("fills documented defaults", () => {
    const config = loadConfig(base);
    expect(config.discord.apiUrl).toBe(DEFAULT_DISCORD_API_URL);
    const { model } = inProcessConfig(config, "the test");
    expect(model.runtime).toBe("in-process");
    expect(model.path).toBeUndefined();
    expect(model.uri).toBe(DEFAULT_MODEL_URI);
    expect(model.directory).toBe("./models");
    expect(model.threads).toBeGreaterThanOrEqual(1);
    expect(config.warnings).toEqual([]);
    expect(config.storeUrl).toBe("sqlite://data/bot.sqlite");
    expect(config.moodEmojis).toEqual({ positive: "😄", negative: "😢", neutral: "😐" });
    expect(config.logLevel).toBe("info");
    expect(config.model).toMatchObject({ sentimentSequences: 2, gpu: "auto" });
    expect(config.chat).toMatchObject({ channelQueue: 3, speedFloor: 0.35 });
    expect(config.sentiment.sharedCache).toEqual({ size: 100_000, ttlSeconds: 604_800, budgetMs: 20 });
  });

  it("returns a deeply frozen object", () => {
    const config = loadConfig(base);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.discord)).toBe(true);
    expect(Object.isFrozen(config.moodEmojis)).toBe(true);
  });

  it("parses every variable", () => {
    const config = loadConfig({
      ...base,
      DISCORD_CLIENT_ID: "123456789012345678",
      DISCORD_GUILD_ID: "223456789012345678",
      DISCORD_API_URL: "http://127.0.0.1:9999/api/",
      MODEL_PATH: "/models/x.gguf",
      MODELS_DIR: "/var/models",
      LLM_THREADS: "2",
      STORE_URL: "sqlite:///tmp/x.sqlite",
      MOOD_EMOJIS: "positive=👍,negative=,neutral=<:meh:123456789012345678>",
      LOG_LEVEL: "DEBUG",
    });
    expect(config.discord.clientId).toBe("123456789012345678");
    expect(config.discord.guildId).toBe("223456789012345678");
    expect(config.discord.apiUrl).toBe("http://127.0.0.1:9999/api");
    expect(config.model).toMatchObject({ path: "/models/x.gguf", threads: 2 });
    expect(config.storeUrl).toBe("sqlite:///tmp/x.sqlite");
    expect(config.moodEmojis).toEqual({ positive: "👍", negative: "", neutral: "<:meh:123456789012345678>" });
    expect(config.logLevel).toBe("debug");
  });

  it("parses the scale, access, sentiment and chat knobs", () => {
    const config = loadConfig({
      ...base,
      SHARD_COUNT: "4",
      SHARD_IDS: "3, 1",
      STORE_URL: "redis://127.0.0.1:6379",
      ALLOW_DMS: "yes",
      CHANNEL_ALLOWLIST: "123456789012345678, 223456789012345678",
      CHANNEL_DENYLIST: "323456789012345678",
      CHAT_FORGET_ROLES: "423456789012345678",
      CHAT_USER_PER_MINUTE: "3",
      CHAT_CHANNEL_PER_MINUTE: "9",
      CHAT_STREAM_EDIT_MS: "1500",
      LLM_CHAT_SEQUENCES: "3",
      SENTIMENT_QUEUE_SIZE: "10",
      SENTIMENT_MAX_WAIT_MS: "5000",
      SENTIMENT_CACHE_SIZE: "0",
      SENTIMENT_NEUTRAL_THRESHOLD: "0.55",
      SENTIMENT_SHARED_CACHE_SIZE: "500",
      SENTIMENT_SHARED_CACHE_TTL_S: "60",
      SENTIMENT_SHARED_CACHE_BUDGET_MS: "15",
      CHAT_CHANNEL_QUEUE: "0",
      CHAT_SPEED_FLOOR: "0.5",
      LLM_SENTIMENT_SEQUENCES: "6",
      LLM_GPU: "Vulkan",
    });
    expect(config.sharding).toEqual({ count: 4, ids: [1, 3] });
    expect(config.access.allowDms).toBe(true);
    expect([...config.access.channelAllowlist]).toEqual(["123456789012345678", "223456789012345678"]);
    expect(config.access.channelDenylist.has("323456789012345678")).toBe(true);
    expect(config.chat.forgetRoleIds.has("423456789012345678")).toBe(true);
    expect(config.chat).toMatchObject({
      userPerMinute: 3,
      channelPerMinute: 9,
      streamEditMs: 1500,
      channelQueue: 0,
      speedFloor: 0.5,
    });
    expect(config.model).toMatchObject({ chatSequences: 3, sentimentSequences: 6, gpu: "vulkan" });
    expect(config.sentiment).toEqual({
      queueSize: 10,
      maxWaitMs: 5000,
      cacheSize: 0,
      neutralThreshold: 0.55,
      sharedCache: { size: 500, ttlSeconds: 60, budgetMs: 15 },
    });
    expect(loadConfig({ ...base, SHARD_COUNT: "AUTO" }).sharding).toEqual({ count: "auto", ids: undefined });
  });

  it("takes the shard a ShardingManager child was given from SHARDS", () => {
    expect(loadConfig({ ...base, SHARD_COUNT: "2", SHARDS: "[1]" }).sharding).toEqual({ count: 2, ids: [1] });
    expect(loadConfig({ ...base, SHARD_COUNT: "2", SHARDS: "1", SHARD_IDS: "0" }).sharding.ids).toEqual([0]);
  });

  it.each([
    [{ SHARD_IDS: "0" }, "SHARD_IDS", "without SHARD_COUNT"],
    [{ SHARD_COUNT: "2", SHARD_IDS: "0,2" }, "SHARD_IDS", "not below SHARD_COUNT"],
    [{ SHARD_COUNT: "many" }, "SHARD_COUNT", "auto or a whole number"],
    [{ SHARD_IDS: "a,b", SHARD_COUNT: "2" }, "SHARD_IDS", "shard numbers"],
    [{ CHANNEL_DENYLIST: "general" }, "CHANNEL_DENYLIST", "Discord ids"],
    [{ LLM_GPU: "tpu" }, "LLM_GPU", "auto, cuda, vulkan, metal, off"],
    [{ CHAT_SPEED_FLOOR: "0" }, "CHAT_SPEED_FLOOR", "from 0.05"],
    [{ SENTIMENT_NEUTRAL_THRESHOLD: "1" }, "SENTIMENT_NEUTRAL_THRESHOLD", "up to (not including) 1"],
    [{ CHAT_STREAM_EDIT_MS: "10" }, "CHAT_STREAM_EDIT_MS", "from 100"],
  ])("rejects %j naming %s", (env, variable, problem) => {
    const error = configError({ ...base, ...env });
    expect(error.variable).toBe(variable);
    expect(error.message).toContain(problem);
  });

  it("explains a missing token: where to get one, .env.example, and the console", () => {
    const error = configError({});
    expect(error.variable).toBe("DISCORD_TOKEN");
    expect(error.message).toContain("https://discord.com/developers/applications");
    expect(error.message).toContain(".env.example");
    expect(error.message).toContain("npm run console");
  });

  it("needs no token for the console", () => {
    expect(loadConfig({}, "console").discord.token).toBe("");
  });

  it("needs a client id to deploy commands", () => {
    expect(configError(base, "deploy").variable).toBe("DISCORD_CLIENT_ID");
  });

  it.each([
    ["LLM_THREADS", "zero", "whole number"],
    ["LLM_THREADS", "0", "whole number"],
    ["LLM_CONTEXT_SIZE", "1.5", "whole number"],
    ["DISCORD_API_URL", "not a url", "absolute URL"],
    ["DISCORD_GUILD_ID", "my-guild", "17 to 20 digits"],
    ["LOG_LEVEL", "loud", "one of"],
    ["CHAT_TEMPERATURE", "hot", "from 0 to 2"],
    ["MOOD_EMOJIS", "happy=😄", "not a label"],
    ["MOOD_EMOJIS", "positive=😄", "missing"],
    ["MOOD_EMOJIS", "positive=😄,positive=😢,negative=,neutral=", "twice"],
  ])("names %s and the fix when it is %j", (variable, value, problem) => {
    const error = configError({ ...base, [variable]: value });
    expect(error.variable).toBe(variable);
    expect(error.message).toContain(problem);
    expect(error.fix.length).toBeGreaterThan(10);
  });
});

describe("the model on a server", () => {
  const server = { ...base, LLM_SERVER_URL: "http://127.0.0.1:8080" };

  it("runs on the server LLM_SERVER_URL names, with documented defaults", () => {
    const config = loadConfig(server);
    expect(config.model).toEqual({
      runtime: "server",
      url: "http://127.0.0.1:8080",
      apiKey: undefined,
      kind: "auto",
      model: undefined,
      maxInFlight: undefined,
      timeoutMs: 60_000,
      streamIdleMs: 30_000,
      chatTemplatePath: undefined,
      priorities: false,
      numCtx: undefined,
      keepAlive: undefined,
    });
    expect(config.warnings).toEqual([]);
  });

  it("parses every server variable", async () => {
    const dir = await mkdtemp(join(tmpdir(), "moodbot-template-"));
    const template = join(dir, "chat.jinja");
    await writeFile(template, "{{ messages }}");
    const config = loadConfig({
      ...server,
      LLM_SERVER_URL: " https://models.example.org/v1 ",
      LLM_SERVER_API_KEY: "sk-test-key",
      LLM_SERVER_KIND: "vLLM",
      LLM_SERVER_MODEL: "Qwen/Qwen2.5-0.5B-Instruct",
      LLM_SERVER_MAX_IN_FLIGHT: "8",
      LLM_SERVER_TIMEOUT_MS: "5000",
      LLM_SERVER_STREAM_IDLE_MS: "2000",
      LLM_SERVER_CHAT_TEMPLATE: template,
      LLM_SERVER_PRIORITIES: "On",
    });
    expect(config.model).toEqual({
      runtime: "server",
      url: "https://models.example.org/v1",
      apiKey: "sk-test-key",
      kind: "vllm",
      model: "Qwen/Qwen2.5-0.5B-Instruct",
      maxInFlight: 8,
      timeoutMs: 5000,
      streamIdleMs: 2000,
      chatTemplatePath: template,
      priorities: true,
      numCtx: undefined,
      keepAlive: undefined,
    });
    expect(config.warnings).toEqual([]);
  });

  it("reads Ollama's num_ctx and keep_alive, a bare number as seconds and a duration as text", () => {
    const ollama = (keepAlive: string) =>
      loadConfig({ ...server, LLM_SERVER_NUM_CTX: " 8192 ", LLM_SERVER_KEEP_ALIVE: keepAlive }).model;
    expect(ollama("30m")).toMatchObject({ numCtx: 8192, keepAlive: "30m", priorities: false });
    expect(ollama("1h30m")).toMatchObject({ keepAlive: "1h30m" });
    expect(ollama("-1")).toMatchObject({ keepAlive: -1 });
    expect(ollama("600")).toMatchObject({ keepAlive: 600 });
  });

  it("warns once about settings for another kind than LLM_SERVER_KIND names, and not with auto", () => {
    const settings = {
      LLM_SERVER_PRIORITIES: "on",
      LLM_SERVER_NUM_CTX: "8192",
      LLM_SERVER_KEEP_ALIVE: "30m",
    };
    const onVllm = loadConfig({ ...server, ...settings, LLM_SERVER_KIND: "vllm" });
    expect(onVllm.warnings).toEqual([
      "LLM_SERVER_KIND is vllm, and these settings are for another kind of server, so they are ignored: " +
        "LLM_SERVER_NUM_CTX (ollama), LLM_SERVER_KEEP_ALIVE (ollama). Remove them to silence this.",
    ]);
    const onLlamaCpp = loadConfig({ ...server, ...settings, LLM_SERVER_KIND: "llama.cpp" });
    expect(onLlamaCpp.warnings).toHaveLength(1);
    expect(onLlamaCpp.warnings[0]).toContain("ignored: LLM_SERVER_PRIORITIES (vllm), LLM_SERVER_NUM_CTX");
    expect(loadConfig({ ...server, ...settings, LLM_SERVER_KIND: "Ollama" }).warnings).toEqual([
      expect.stringContaining("ignored: LLM_SERVER_PRIORITIES (vllm)."),
    ]);
    // With auto the kind is known only once the server answers: the runtime warns then.
    expect(loadConfig({ ...server, ...settings }).warnings).toEqual([]);
  });

  it("ignores the in-process variables, even bad ones, with one warning naming those that were set", () => {
    const config = loadConfig({
      ...server,
      MODEL_PATH: "/models/x.gguf",
      LLM_THREADS: "zero",
      LLM_GPU: "",
      CHAT_SPEED_FLOOR: "0.5",
    });
    expect(config.model.runtime).toBe("server");
    expect(config.warnings).toHaveLength(1);
    expect(config.warnings[0]).toContain("ignored: MODEL_PATH, LLM_THREADS, CHAT_SPEED_FLOOR.");
    expect(config.warnings[0]).not.toContain("LLM_GPU");
    expect(config.chat.speedFloor).toBe(0.35);
  });

  it("warns once about server variables set without LLM_SERVER_URL", () => {
    const config = loadConfig({ ...base, LLM_SERVER_API_KEY: "sk-test-key", LLM_SERVER_KIND: "ollama" });
    expect(config.model.runtime).toBe("in-process");
    expect(config.warnings).toHaveLength(1);
    expect(config.warnings[0]).toContain("ignored: LLM_SERVER_API_KEY, LLM_SERVER_KIND.");
    expect(config.warnings[0]).not.toContain("sk-test-key");
  });

  it.each([
    ["LLM_SERVER_URL", "ftp://models.example.org", "http:// or https://"],
    ["LLM_SERVER_URL", "127.0.0.1:8080", "http:// or https://"],
    ["LLM_SERVER_KIND", "tgi", "one of auto, llama.cpp, vllm, ollama, openai"],
    ["LLM_SERVER_MAX_IN_FLIGHT", "0", "whole number from 1"],
    ["LLM_SERVER_TIMEOUT_MS", "-1", "whole number"],
    ["LLM_SERVER_STREAM_IDLE_MS", "soon", "whole number"],
    ["LLM_SERVER_CHAT_TEMPLATE", "/nonexistent/chat.jinja", "names no file"],
    ["LLM_SERVER_PRIORITIES", "yes", "one of on, off"],
    ["LLM_SERVER_NUM_CTX", "2k", "whole number from 1"],
    ["LLM_SERVER_NUM_CTX", "0", "whole number from 1"],
    ["LLM_SERVER_KEEP_ALIVE", "forever", "a duration such as 30m"],
    ["LLM_SERVER_KEEP_ALIVE", "30 minutes", "a duration such as 30m"],
  ])("names %s and the fix when it is %j", (variable, value, problem) => {
    const error = configError({ ...server, [variable]: value });
    expect(error.variable).toBe(variable);
    expect(error.message).toContain(problem);
    expect(error.fix.length).toBeGreaterThan(10);
  });

  it.each([
    [
      "LLM_SERVER_PRIORITIES",
      "yes",
      "Set it to on only for a vLLM started with --scheduling-policy priority",
    ],
    ["LLM_SERVER_NUM_CTX", "lots", "Modelfile num_ctx (else 4096)"],
    ["LLM_SERVER_KEEP_ALIVE", "always", "or -1 to keep the model loaded"],
  ])("the fix for a bad %s says what to set", (variable, value, fix) => {
    expect(configError({ ...server, [variable]: value }).fix).toContain(fix);
  });

  it("never repeats a bad server URL, which can carry a password", () => {
    const error = configError({ ...server, LLM_SERVER_URL: "ftp://bot:hunter2secret@models.example.org" });
    expect(error.variable).toBe("LLM_SERVER_URL");
    expect(error.message).not.toContain("hunter2secret");
  });

  it("counts the API key and the URL's password among the secrets no log line holds", () => {
    const config = loadConfig({
      ...server,
      LLM_SERVER_URL: "https://bot:url-password@models.example.org",
      LLM_SERVER_API_KEY: "sk-test-key",
    });
    expect(configSecrets(config)).toEqual(expect.arrayContaining(["sk-test-key", "url-password", "bot"]));
  });

  it("refuses a tool that runs the model in its own process, naming LLM_SERVER_URL", () => {
    const config = loadConfig(server);
    expect(() => inProcessConfig(config, "the bench")).toThrow(ConfigError);
    expect(() => inProcessConfig(config, "the bench")).toThrow(/LLM_SERVER_URL is set, and the bench/);
  });
});

it("keeps .env out of git", () => {
  const ignored = readFileSync(new URL("../../.gitignore", import.meta.url), "utf8").split("\n");
  expect(ignored).toContain(".env");
});

describe("readEnvironment", () => {
  it("reads .env, and real environment variables win", async () => {
    const dir = await mkdtemp(join(tmpdir(), "moodbot-env-"));
    const file = join(dir, ".env");
    await writeFile(file, "DISCORD_TOKEN=from-file\nLOG_LEVEL=warn\n# comment\nMODELS_DIR=./m\n");
    const env = readEnvironment({ LOG_LEVEL: "debug" }, file);
    expect(env.DISCORD_TOKEN).toBe("from-file");
    expect(env.LOG_LEVEL).toBe("debug");
    expect(env.MODELS_DIR).toBe("./m");
  });

  it("works without a .env file", () => {
    expect(readEnvironment({ A: "1" }, "/nonexistent/.env")).toEqual({ A: "1" });
  });
});
