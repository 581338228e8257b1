import { existsSync, readFileSync } from "node:fs";
import { parseEnv } from "node:util";
import {
  type ConfigPurpose,
  GENERIC_FIX,
  rowsOf,
  schemaOf,
  type ValuesOf,
  valuesOf,
} from "./configSchema.js";
import { CONFIG_TABLE } from "./configTable.js";
import { deepFreeze } from "./configValues.js";
import { ConfigError } from "./errors.js";
import { forChosenRuntime, type InProcessModelConfig } from "./modelConfig.js";

/*
 * The config module: reads the environment once into a frozen Config. Each variable is written once, in
 * src/platform/configTable.ts; this file parses the environment with the table's schema and assembles the table's shape.
 */

export type { ConfigPurpose } from "./configSchema.js";
export {
  CONFIG_TABLE,
  DEFAULT_ATTACHMENT_HOSTS,
  DEFAULT_DISCORD_API_URL,
  DEFAULT_MOOD_EMOJIS,
  DEFAULT_STORE_URL,
  DEFAULT_TASKS_DIR,
} from "./configTable.js";
export {
  DEFAULT_MODEL_URI,
  type GpuSetting,
  type InProcessModelConfig,
  inProcessConfig,
  type ModelConfig,
  type ServerKindSetting,
  type ServerModelConfig,
} from "./modelConfig.js";

/** The config: the table's values in its shape (see src/platform/configTable.ts for what each one means). */
export type Config = ValuesOf<typeof CONFIG_TABLE> & {
  /** Sentences for the log at startup: settings that were given and are ignored. */
  readonly warnings: readonly string[];
};

/** A config whose model runs in this process: what the tools that measure that runtime itself are given. */
export type InProcessConfig = Config & { readonly model: InProcessModelConfig };

const ROWS = rowsOf(CONFIG_TABLE);
const ENV_SCHEMA = schemaOf(ROWS);

/** Every variable moodbot reads; .env.example documents each one. */
export const CONFIG_VARIABLES: readonly string[] = ROWS.map(({ variable }) => variable.name);

/** Reads `.env` (if present) under the real environment, which wins. */
export function readEnvironment(
  processEnv: NodeJS.ProcessEnv = process.env,
  envFile = ".env",
): Record<string, string | undefined> {
  const fromFile = existsSync(envFile) ? parseEnv(readFileSync(envFile, "utf8")) : {};
  return { ...fromFile, ...processEnv };
}

/**
 * Parses the environment once into a frozen Config. Throws a ConfigError naming the first bad variable and its fix.
 */
export function loadConfig(
  env: Record<string, string | undefined> = readEnvironment(),
  purpose: ConfigPurpose = "bot",
): Config {
  const chosen = forChosenRuntime(env);
  const parsed = parseEnvironment(chosen.env);
  requireVariables(chosen.env, purpose);
  // valuesOf builds the shape ValuesOf describes, both from the one table.
  const values = valuesOf(CONFIG_TABLE, parsed) as ValuesOf<typeof CONFIG_TABLE>;
  return deepFreeze({ ...values, warnings: chosen.warnings });
}

/** Every variable checked against the schema; the first bad one becomes a ConfigError with its fix. */
function parseEnvironment(env: Record<string, string | undefined>): Record<string, unknown> {
  const parsed = ENV_SCHEMA.safeParse(env);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const name = String(issue?.path[0] ?? "environment");
  const row = ROWS.find(({ variable }) => variable.name === name);
  throw new ConfigError(name, issue?.message ?? "is invalid", row?.variable.fix ?? GENERIC_FIX);
}

/** The bot needs its token; deploy-commands also needs the application id. The console needs neither. */
function requireVariables(env: Record<string, string | undefined>, purpose: ConfigPurpose): void {
  for (const { variable } of ROWS) {
    if (variable.requiredFor.includes(purpose) && !env[variable.name]?.trim()) {
      throw new ConfigError(variable.name, "is not set", variable.fix);
    }
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
