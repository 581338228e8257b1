import { rowsOf } from "./configSchema.js";
import {
  CONFIG_TABLE,
  DEFAULT_MODEL_URI,
  GPU_SETTINGS,
  type InProcessModelConfig,
  type ModelConfig,
  SERVER_KIND_SETTINGS,
  type ServerModelConfig,
} from "./configTable.js";
import { ConfigError } from "./errors.js";

/*
 * The config's model section: where the model runs (in the bot's process, or on an inference server) and that
 * runtime's settings. The variables are in src/platform/configTable.ts; this file picks the ones the chosen runtime reads.
 *
 * The literal unions below (GpuSetting, ServerKindSetting) are spelled out in the table rather than imported: the
 * config never imports the model layer, nor the model layer the config. The assembly hands `Config.model` to
 * openModel (src/llm/openModel.ts), whose own option types must accept it, so the compiler keeps the two in step.
 */

export type { InProcessModelConfig, ModelConfig, ServerModelConfig };
export { DEFAULT_MODEL_URI, GPU_SETTINGS, SERVER_KIND_SETTINGS };
/** The compute backend: auto takes a GPU when one works, else the CPU. */
export type GpuSetting = (typeof GPU_SETTINGS)[number];
/** The server's protocol, or auto: detected on an authenticated route. */
export type ServerKindSetting = (typeof SERVER_KIND_SETTINGS)[number];

const { url: SERVER_URL, kind: SERVER_KIND } = CONFIG_TABLE.model.fields.server.fields;

const isSet = (value: string | undefined) => value !== undefined && value.trim() !== "";

const ROWS = rowsOf(CONFIG_TABLE);

/** The variables one runtime reads, in the table's order; the other runtime makes them moot. */
const readBy = (runtime: "in-process" | "server") =>
  ROWS.flatMap((row) => (row.readBy === runtime ? [row.variable] : []));

/**
 * The environment as the chosen runtime reads it, and one warning naming the variables the other runtime would
 * have read. With a server URL set, the in-process variables are left out before they are checked: a value the bot
 * ignores never stops it.
 */
export function forChosenRuntime(env: Record<string, string | undefined>): {
  readonly env: Record<string, string | undefined>;
  readonly warnings: readonly string[];
} {
  if (isSet(env[SERVER_URL.name])) {
    const inProcess = readBy("in-process").map(({ name }) => name);
    const ignored = inProcess.filter((name) => isSet(env[name]));
    const kept = { ...env };
    for (const name of inProcess) delete kept[name];
    const warning = `${SERVER_URL.name} is set, so the model runs on that server and these in-process settings are ignored: ${ignored.join(", ")}. Remove them to silence this.`;
    const otherKind = otherKindWarning(env);
    return {
      env: kept,
      warnings: [...(ignored.length > 0 ? [warning] : []), ...(otherKind === undefined ? [] : [otherKind])],
    };
  }
  const unused = readBy("server")
    .map(({ name }) => name)
    .filter((name) => isSet(env[name]));
  const warning = `${SERVER_URL.name} is not set, so the model runs in the bot's process and these server settings are ignored: ${unused.join(", ")}. Set ${SERVER_URL.name} to use a server, or remove them.`;
  return { env, warnings: unused.length > 0 ? [warning] : [] };
}

/**
 * One warning naming the settings of another kind of server than the configured kind. With auto, the kind is known
 * only once the server answers, and the server runtime warns then.
 */
function otherKindWarning(env: Record<string, string | undefined>): string | undefined {
  const kind = env[SERVER_KIND.name]?.trim().toLowerCase();
  if (kind === undefined || kind === "" || kind === "auto") return undefined;
  const unread = readBy("server").filter(
    ({ name, serverKind }) => serverKind !== undefined && serverKind !== kind && isSet(env[name]),
  );
  if (unread.length === 0) return undefined;
  const named = unread.map(({ name, serverKind }) => `${name} (${serverKind})`).join(", ");
  return `${SERVER_KIND.name} is ${kind}, and these settings are for another kind of server, so they are ignored: ${named}. Remove them to silence this.`;
}

/**
 * The config, for a tool that runs the model in its own process whatever the server URL says (the bench's
 * pass-cost fit, the eval's baselines); a ConfigError when the model is on a server.
 */
export function inProcessConfig<C extends { readonly model: ModelConfig }>(
  config: C,
  tool: string,
): C & { readonly model: InProcessModelConfig } {
  const { model } = config;
  if (model.runtime === "in-process") return Object.freeze({ ...config, model });
  const { path, uri } = CONFIG_TABLE.model.fields.inProcess.fields;
  throw new ConfigError(
    SERVER_URL.name,
    `is set, and ${tool} runs the model in its own process`,
    `Unset ${SERVER_URL.name} for this command, and set ${path.name} or ${uri.name} for the model it loads.`,
  );
}
