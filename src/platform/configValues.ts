import { existsSync } from "node:fs";
import { z } from "zod";
import { ConfigError } from "./errors.js";
import { type EmojiMap, parseMoodEmojis } from "./sentimentLabels.js";

/*
 * The shapes of the config's values: each parser turns one variable's text into its value, or adds an issue that
 * says what it must be and what was given. Each also carries its default as the docs show it, so the default is
 * written once, where the value is parsed. src/platform/configTable.ts builds its variables from these.
 */

/** A variable's parser, and its default as README.md and .env.example show it (markdown; "" for none). */
export interface Parser<T> {
  readonly schema: z.ZodType<T, string | undefined>;
  readonly shown: string;
}

/** A default that depends on the machine: computed when the config is read, shown as what it is. */
export interface MachineDefault<T> {
  readonly shown: string;
  readonly value: () => T;
}

type Fallback<T> = T | MachineDefault<T>;

export const machineDefault = <T>(shown: string, value: () => T): MachineDefault<T> => ({ shown, value });

const isMachineDefault = <T>(fallback: Fallback<T>): fallback is MachineDefault<T> =>
  typeof fallback === "object" && fallback !== null && "value" in fallback;

const fallbackValue = <T>(fallback: Fallback<T>): T =>
  isMachineDefault(fallback) ? fallback.value() : fallback;

const shownOf = <T>(fallback: Fallback<T>): string =>
  isMachineDefault(fallback) ? fallback.shown : `\`${String(fallback)}\``;

const parser = <T>(schema: z.ZodType<T, string | undefined>, shown = ""): Parser<T> => ({ schema, shown });

/** A variable's text with its surrounding space removed; empty counts as unset. */
const optionalText = z
  .string()
  .optional()
  .transform((raw) => (raw === undefined || raw.trim() === "" ? undefined : raw.trim()));

/** Any text; undefined when unset. */
export const text: Parser<string | undefined> = parser(optionalText);

/** Any text, or `fallback` when unset. */
export const textOr = (fallback: Fallback<string>): Parser<string> =>
  parser(
    optionalText.transform((raw) => raw ?? fallbackValue(fallback)),
    shownOf(fallback),
  );

/** A number within a range, or `fallback` when unset; the error says the range and what was given. */
export const numberVar = (
  fallback: Fallback<number>,
  range: { min: number; max: number; whole?: boolean; belowMax?: boolean },
): Parser<number> =>
  parser(
    optionalText.transform((raw, ctx) => {
      if (raw === undefined) return fallbackValue(fallback);
      const value = Number(raw);
      const inRange = value >= range.min && (range.belowMax ? value < range.max : value <= range.max);
      if (!Number.isFinite(value) || !inRange || (range.whole && !Number.isInteger(value))) {
        const kind = range.whole ? "a whole number" : "a number";
        const upTo = range.belowMax ? `up to (not including) ${range.max}` : `to ${range.max}`;
        ctx.addIssue({ code: "custom", message: `must be ${kind} from ${range.min} ${upTo} (got "${raw}")` });
        return z.NEVER;
      }
      return value;
    }),
    shownOf(fallback),
  );

export const positiveInt = (fallback: Fallback<number>, max: number): Parser<number> =>
  numberVar(fallback, { min: 1, max, whole: true });

/** A whole number from 1 to `max`, or undefined when unset (some other source decides then). */
export const optionalPositiveInt = (max: number): Parser<number | undefined> =>
  parser(
    optionalText.transform((raw, ctx) => {
      if (raw === undefined) return undefined;
      const value = Number(raw);
      if (!Number.isInteger(value) || value < 1 || value > max) {
        ctx.addIssue({ code: "custom", message: `must be a whole number from 1 to ${max} (got "${raw}")` });
        return z.NEVER;
      }
      return value;
    }),
  );

const oneOfSchema = <const T extends string>(options: readonly T[], fallback: T) =>
  optionalText.transform((raw, ctx) => {
    const setting = (raw ?? fallback).toLowerCase();
    const known = options.find((option) => option === setting);
    if (known === undefined) {
      ctx.addIssue({ code: "custom", message: `must be one of ${options.join(", ")} (got "${raw}")` });
      return z.NEVER;
    }
    return known;
  });

/** One of a list of words, case-insensitively, or `fallback` when unset. */
export const oneOf = <const T extends string>(options: readonly T[], fallback: T): Parser<T> =>
  parser(oneOfSchema(options, fallback), shownOf(fallback));

/** on or off, as true or false. */
export const onOff = (fallback: "on" | "off"): Parser<boolean> =>
  parser(
    oneOfSchema(["on", "off"], fallback).transform((setting) => setting === "on"),
    shownOf(fallback),
  );

export const boolean: Parser<boolean> = parser(
  optionalText.transform((raw, ctx) => {
    if (raw === undefined) return false;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    ctx.addIssue({ code: "custom", message: `must be true or false (got "${raw}")` });
    return z.NEVER;
  }),
  shownOf(false),
);

export const snowflake: Parser<string | undefined> = parser(
  optionalText.refine((raw) => raw === undefined || /^\d{17,20}$/.test(raw), {
    message: "must be a Discord id: 17 to 20 digits (right-click → Copy ID with Developer Mode on)",
  }),
);

export const snowflakeList: Parser<ReadonlySet<string>> = parser(
  optionalText.transform((raw, ctx) => {
    const ids = (raw ?? "")
      .split(",")
      .map((id) => id.trim())
      .filter(Boolean);
    const bad = ids.find((id) => !/^\d{17,20}$/.test(id));
    if (bad !== undefined) {
      ctx.addIssue({
        code: "custom",
        message: `must be Discord ids separated by commas ("${bad}" is not an id)`,
      });
      return z.NEVER;
    }
    return new Set(ids) as ReadonlySet<string>;
  }),
);

export const shardList: Parser<readonly number[] | undefined> = parser(
  optionalText.transform((raw, ctx) => {
    if (raw === undefined) return undefined;
    const ids = raw
      .replace(/[[\]\s]/g, "")
      .split(",")
      .filter(Boolean)
      .map(Number);
    if (ids.length === 0 || ids.some((id) => !Number.isInteger(id) || id < 0)) {
      ctx.addIssue({
        code: "custom",
        message: `must be shard numbers separated by commas, like 0,1 (got "${raw}")`,
      });
      return z.NEVER;
    }
    return [...new Set(ids)].sort((a, b) => a - b) as readonly number[];
  }),
);

/** A shard count: auto (Discord's recommendation) or a number; undefined runs one unsharded connection. */
export const shardCount: Parser<number | "auto" | undefined> = parser(
  optionalText.transform((raw, ctx) => {
    if (raw === undefined) return undefined;
    if (raw.toLowerCase() === "auto") return "auto" as const;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1 || value > 10_000) {
      ctx.addIssue({ code: "custom", message: `must be auto or a whole number of shards (got "${raw}")` });
      return z.NEVER;
    }
    return value;
  }),
);

export const tcpPort: Parser<number | undefined> = parser(
  optionalText.transform((raw, ctx) => {
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1 || value > 65_535) {
      ctx.addIssue({ code: "custom", message: `must be a TCP port from 1 to 65535 (got "${raw}")` });
      return z.NEVER;
    }
    return value;
  }),
);

/** Host names separated by commas, lower-cased; `fallback` when unset. */
export const hostList = (fallback: string): Parser<ReadonlySet<string>> =>
  parser(
    optionalText.transform((raw, ctx) => {
      const hosts = (raw ?? fallback)
        .split(",")
        .map((host) => host.trim().toLowerCase())
        .filter(Boolean);
      const bad = hosts.find((host) => !/^[a-z0-9.-]+$/.test(host));
      if (bad !== undefined) {
        ctx.addIssue({
          code: "custom",
          message: `must be host names separated by commas ("${bad}" is not one)`,
        });
        return z.NEVER;
      }
      return new Set(hosts) as ReadonlySet<string>;
    }),
    shownOf(fallback),
  );

/** An absolute URL without its trailing slashes, or `fallback` when unset. */
export const absoluteUrl = (fallback: string): Parser<string> =>
  parser(
    optionalText
      .refine((raw) => raw === undefined || URL.canParse(raw), {
        message: `must be an absolute URL such as ${fallback}`,
      })
      .transform((raw) => (raw ?? fallback).replace(/\/+$/, "")),
    shownOf(fallback),
  );

/** An http:// or https:// URL, or undefined when unset. */
export const httpUrl: Parser<string | undefined> = parser(
  optionalText.refine(
    (raw) => raw === undefined || (URL.canParse(raw) && /^https?:$/.test(new URL(raw).protocol)),
    // The value is not repeated: a URL can carry credentials.
    { message: "must be an http:// or https:// URL" },
  ),
);

/** The path of a file that exists, or undefined when unset. */
export const existingFile: Parser<string | undefined> = parser(
  optionalText.refine((raw) => raw === undefined || existsSync(raw), { message: "names no file" }),
);

/** Ollama's keep_alive: a Go duration ("30m", "1h30m", "-1m"), or seconds as a number (-1: never unload). */
export const keepAlive: Parser<string | number | undefined> = parser(
  optionalText.transform((raw, ctx) => {
    if (raw === undefined) return undefined;
    // A bare number must go as a JSON number: Ollama reads a string as a duration, which needs a unit.
    if (/^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
    if (/^-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(raw)) return raw;
    ctx.addIssue({
      code: "custom",
      message: `must be a duration such as 30m or 1h, a number of seconds, or -1 (got "${raw}")`,
    });
    return z.NEVER;
  }),
);

/** label=emoji for each sentiment label, or `fallback` when unset or blank. */
export const moodEmojis = (fallback: string): Parser<EmojiMap> =>
  parser(
    z
      .string()
      .optional()
      .transform((raw, ctx) => {
        try {
          return parseMoodEmojis(raw?.trim() ? raw : fallback);
        } catch (error) {
          ctx.addIssue({
            code: "custom",
            message: `is invalid: ${error instanceof Error ? error.message : String(error)}`,
          });
          return z.NEVER;
        }
      }),
    shownOf(fallback),
  );

/** Freezes an object and everything in it; sets stay as they are (they are typed read-only instead). */
export function deepFreeze<T>(value: T): T {
  if (value instanceof Set) return value;
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** The shards this process runs, checked against the shard count; `names` are the two variables'. */
export function checkedSharding(
  ids: readonly number[] | undefined,
  count: number | "auto" | undefined,
  names: { readonly ids: string; readonly count: string },
): { readonly count: number | "auto" | undefined; readonly ids: readonly number[] | undefined } {
  if (ids !== undefined && count === undefined) {
    throw new ConfigError(
      names.ids,
      `is set without ${names.count}`,
      `Set ${names.count} to the total number of shards.`,
    );
  }
  if (ids !== undefined && typeof count === "number" && ids.some((id) => id >= count)) {
    throw new ConfigError(
      names.ids,
      `names a shard that is not below ${names.count} (${count})`,
      `Shards are numbered from 0: with ${names.count}=2 they are 0 and 1.`,
    );
  }
  return { count, ids };
}
