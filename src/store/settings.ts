import type Keyv from "keyv";
import { z } from "zod";
import type { Logger } from "../platform/logger.js";
import type { EmojiMap, SentimentLabel } from "../platform/sentimentLabels.js";
import { SETTING_KEYS, type SettingKey } from "../wording/keys.js";
import { CachedRecords } from "./cachedRecord.js";

/**
 * Per-guild and per-channel settings that server admins change with /settings, stored in Keyv (so shared by every
 * shard over Redis) and applied to the next message, with no restart. A channel's value wins over its guild's;
 * an unset value falls back to the bot's config.
 */

const onOff = z.enum(["on", "off"]);
/** Each key's accepted values; parse errors are shown to the admin as they are. */
export const SETTING_VALUES: Record<SettingKey, z.ZodType<string>> = {
  reactions: onOff,
  "reaction-share": z
    .string()
    .regex(/^(100|[1-9]?\d)%?$/, "must be a percentage from 0 to 100")
    .transform((value) => value.replace("%", "")),
  "emoji-positive": z
    .string()
    .regex(/^(\S{1,16}|<a?:\w{1,32}:\d{17,20}>|none)$/, "must be one emoji, a custom emoji, or none"),
  "emoji-negative": z
    .string()
    .regex(/^(\S{1,16}|<a?:\w{1,32}:\d{17,20}>|none)$/, "must be one emoji, a custom emoji, or none"),
  "emoji-neutral": z
    .string()
    .regex(/^(\S{1,16}|<a?:\w{1,32}:\d{17,20}>|none)$/, "must be one emoji, a custom emoji, or none"),
  persona: z.string().min(1).max(1500),
  "chat-channel": onOff,
  "reply-chain": onOff,
  language: z.enum(["en", "zh"]),
};

export type Settings = Partial<Record<SettingKey, string>>;
// Partial: zod 4's record over an enum requires every key, and a guild sets only some.
const settingsSchema = z.partialRecord(z.enum(SETTING_KEYS), z.string());

export type Scope = "guild" | "channel";

/** The mood emojis in force: the base ones, with any settings overrides ("none" turns a label off). */
export function effectiveEmojis(base: EmojiMap, settings: Settings): EmojiMap {
  const pick = (label: SentimentLabel) => {
    const value = settings[`emoji-${label}`];
    return value === undefined ? base[label] : value === "none" ? "" : value;
  };
  return { positive: pick("positive"), negative: pick("negative"), neutral: pick("neutral") };
}

/** Reads a settings file (the console's): a JSON object of setting keys and values, each checked. */
export function parseSettingsFile(text: string, file: string): Settings {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error(`${file} is not valid JSON`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new Error(`${file} must hold a JSON object`);
  const settings: Settings = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!(SETTING_KEYS as readonly string[]).includes(key)) {
      throw new Error(`${file}: "${key}" is not a setting; the settings are ${SETTING_KEYS.join(", ")}`);
    }
    const parsed = SETTING_VALUES[key as SettingKey].safeParse(String(value));
    if (!parsed.success)
      throw new Error(`${file}: ${key} ${parsed.error.issues[0]?.message ?? "is invalid"}`);
    settings[key as SettingKey] = parsed.data;
  }
  return settings;
}

/** How long a read is trusted: other processes sharing Redis see a change within this time. */
const CACHE_MS = 10_000;
/** Guilds and channels whose settings are kept in memory; beyond this the least recently used are dropped. */
const CACHE_ENTRIES = 20_000;

export interface SettingsOptions {
  readonly cacheMs?: number;
  readonly cacheSize?: number;
  readonly now?: () => number;
}

/**
 * Settings are read through one cached-record policy (`CachedRecords`): while the store cannot be read, the last
 * settings read for a guild or channel stay in force, so a Redis blip turns no reaction back on and no persona or
 * language off; a guild or channel never read gets the defaults.
 */
export class SettingsStore {
  private readonly records: CachedRecords<Settings>;

  constructor(keyv: Keyv<unknown>, logger: Logger, options: SettingsOptions = {}) {
    this.records = new CachedRecords<Settings>({
      keyv,
      logger,
      label: "settings",
      freshMs: options.cacheMs ?? CACHE_MS,
      maxEntries: options.cacheSize ?? CACHE_ENTRIES,
      unknown: {},
      parse: (raw, key) => {
        if (raw === undefined) return {};
        const parsed = settingsSchema.safeParse(raw);
        if (parsed.success) return parsed.data;
        logger.warn({ key }, "ignoring malformed settings");
        return {};
      },
      ...(options.now === undefined ? {} : { now: options.now }),
    });
  }

  private key(scope: Scope, id: string): string {
    return `settings:${scope}:${id}`;
  }

  /** A guild's or channel's own settings as stored now (for /settings show); throws when the store cannot be read. */
  get(scope: Scope, id: string): Promise<Settings> {
    return this.records.read(this.key(scope, id));
  }

  /**
   * The settings in force in a channel: the channel's own over the guild's, both read at once. Never throws: while
   * the store is unreachable the last settings read hold, and the defaults where none were.
   */
  async effective(guildId: string | null, channelId: string): Promise<Settings> {
    const [guild, channel] = await Promise.all([
      guildId === null ? {} : this.records.get(this.key("guild", guildId)),
      this.records.get(this.key("channel", channelId)),
    ]);
    return { ...guild, ...channel };
  }

  /** Changes one setting. Read from the store, not the cache, so that another shard's recent change is kept. */
  async set(scope: Scope, id: string, key: SettingKey, value: string): Promise<void> {
    const current = await this.get(scope, id);
    await this.write(scope, id, { ...current, [key]: value });
  }

  async reset(scope: Scope, id: string, key: SettingKey): Promise<void> {
    const { [key]: _dropped, ...rest } = await this.get(scope, id);
    await this.write(scope, id, rest);
  }

  /** Removes every setting of a guild or channel (when the server's data is purged). */
  async delete(scope: Scope, id: string): Promise<void> {
    await this.records.remove(this.key(scope, id), {});
  }

  private async write(scope: Scope, id: string, value: Settings): Promise<void> {
    await this.records.write(this.key(scope, id), value, value);
  }
}
