import { z } from "zod";
import { ConfigError } from "./errors.js";

/*
 * The shapes of the config's values: each parser turns one variable's text into its value, or adds an issue that
 * says what it must be and what was given. src/config.ts and src/modelConfig.ts build their schema from these.
 */

/** A variable's text with its surrounding space removed; empty counts as unset. */
export const optionalText = z
  .string()
  .optional()
  .transform((raw) => (raw === undefined || raw.trim() === "" ? undefined : raw.trim()));

/** A number within a range, or `fallback` when unset; the error says the range and what was given. */
export const numberVar = (
  fallback: number,
  range: { min: number; max: number; whole?: boolean; belowMax?: boolean },
) =>
  optionalText.transform((raw, ctx) => {
    if (raw === undefined) return fallback;
    const value = Number(raw);
    const inRange = value >= range.min && (range.belowMax ? value < range.max : value <= range.max);
    if (!Number.isFinite(value) || !inRange || (range.whole && !Number.isInteger(value))) {
      const kind = range.whole ? "a whole number" : "a number";
      const upTo = range.belowMax ? `up to (not including) ${range.max}` : `to ${range.max}`;
      ctx.addIssue({ code: "custom", message: `must be ${kind} from ${range.min} ${upTo} (got "${raw}")` });
      return z.NEVER;
    }
    return value;
  });

export const positiveInt = (fallback: number, max: number) =>
  numberVar(fallback, { min: 1, max, whole: true });

/** A whole number from 1 to `max`, or undefined when unset (some other source decides then). */
export const optionalPositiveInt = (max: number) =>
  optionalText.transform((raw, ctx) => {
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1 || value > max) {
      ctx.addIssue({ code: "custom", message: `must be a whole number from 1 to ${max} (got "${raw}")` });
      return z.NEVER;
    }
    return value;
  });

/** One of a list of words, case-insensitively, or `fallback` when unset. */
export const oneOf = <const T extends string>(options: readonly T[], fallback: T) =>
  optionalText.transform((raw, ctx) => {
    const setting = (raw ?? fallback).toLowerCase();
    const known = options.find((option) => option === setting);
    if (known === undefined) {
      ctx.addIssue({ code: "custom", message: `must be one of ${options.join(", ")} (got "${raw}")` });
      return z.NEVER;
    }
    return known;
  });

export const snowflake = optionalText.refine((raw) => raw === undefined || /^\d{17,20}$/.test(raw), {
  message: "must be a Discord id: 17 to 20 digits (right-click → Copy ID with Developer Mode on)",
});

export const boolean = optionalText.transform((raw, ctx) => {
  if (raw === undefined) return false;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  ctx.addIssue({ code: "custom", message: `must be true or false (got "${raw}")` });
  return z.NEVER;
});

export const snowflakeList = optionalText.transform((raw, ctx) => {
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
});

export const shardList = optionalText.transform((raw, ctx) => {
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
});

/** A shard count: auto (Discord's recommendation) or a number; undefined runs one unsharded connection. */
export const shardCount = optionalText.transform((raw, ctx) => {
  if (raw === undefined) return undefined;
  if (raw.toLowerCase() === "auto") return "auto" as const;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > 10_000) {
    ctx.addIssue({ code: "custom", message: `must be auto or a whole number of shards (got "${raw}")` });
    return z.NEVER;
  }
  return value;
});

export const tcpPort = optionalText.transform((raw, ctx) => {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > 65_535) {
    ctx.addIssue({ code: "custom", message: `must be a TCP port from 1 to 65535 (got "${raw}")` });
    return z.NEVER;
  }
  return value;
});

/** Host names separated by commas, lower-cased; `fallback` when unset. */
export const hostList = (fallback: string) =>
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
  });

/** Freezes an object and everything in it; sets stay as they are (they are typed read-only instead). */
export function deepFreeze<T>(value: T): T {
  if (value instanceof Set) return value;
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** SHARD_COUNT and SHARD_IDS (or the SHARDS the sharding manager sets), checked against each other. */
export function checkedSharding(
  ids: readonly number[] | undefined,
  count: number | "auto" | undefined,
): { readonly count: number | "auto" | undefined; readonly ids: readonly number[] | undefined } {
  if (ids !== undefined && count === undefined) {
    throw new ConfigError(
      "SHARD_IDS",
      "is set without SHARD_COUNT",
      "Set SHARD_COUNT to the total number of shards.",
    );
  }
  if (ids !== undefined && typeof count === "number" && ids.some((id) => id >= count)) {
    throw new ConfigError(
      "SHARD_IDS",
      `names a shard that is not below SHARD_COUNT (${count})`,
      "Shards are numbered from 0: with SHARD_COUNT=2 they are 0 and 1.",
    );
  }
  return { count, ids };
}
