import type Keyv from "keyv";
import { z } from "zod";
import type { Logger } from "../logger.js";
import type { EmojiMap, SentimentLabel } from "../sentimentLabels.js";

/**
 * Per-guild and per-channel settings that server admins change with /settings, stored in Keyv (so shared by every
 * shard over Redis) and applied to the next message, with no restart. A channel's value wins over its guild's;
 * an unset value falls back to the bot's config.
 */
export const SETTING_KEYS = [
  "reactions",
  "reaction-share",
  "emoji-positive",
  "emoji-negative",
  "emoji-neutral",
  "persona",
  "chat-channel",
  "reply-chain",
  "language",
] as const;
export type SettingKey = (typeof SETTING_KEYS)[number];

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
const settingsSchema = z.record(z.enum(SETTING_KEYS), z.string());

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

export class SettingsStore {
  private readonly cache = new Map<string, { value: Settings; until: number }>();

  constructor(
    private readonly keyv: Keyv<unknown>,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  private key(scope: Scope, id: string): string {
    return `settings:${scope}:${id}`;
  }

  async get(scope: Scope, id: string): Promise<Settings> {
    const key = this.key(scope, id);
    const cached = this.cache.get(key);
    if (cached && cached.until > this.now()) return cached.value;
    const raw = await this.keyv.get(key);
    const parsed = raw === undefined ? { success: true as const, data: {} } : settingsSchema.safeParse(raw);
    if (!parsed.success) this.logger.warn({ key }, "ignoring malformed settings");
    const value = parsed.success ? parsed.data : {};
    this.cache.set(key, { value, until: this.now() + CACHE_MS });
    return value;
  }

  /**
   * The settings in force in a channel: the channel's own over the guild's. While the store is unreachable the
   * bot keeps serving with its defaults rather than going silent.
   */
  async effective(guildId: string | null, channelId: string): Promise<Settings> {
    try {
      const guild = guildId === null ? {} : await this.get("guild", guildId);
      const channel = await this.get("channel", channelId);
      return { ...guild, ...channel };
    } catch (error) {
      this.logger.warn(
        { err: error instanceof Error ? error.message : String(error) },
        "settings unavailable; using defaults",
      );
      return {};
    }
  }

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
    const key = this.key(scope, id);
    await this.keyv.delete(key);
    this.cache.delete(key);
  }

  private async write(scope: Scope, id: string, value: Settings): Promise<void> {
    const key = this.key(scope, id);
    await this.keyv.set(key, value);
    this.cache.set(key, { value, until: this.now() + CACHE_MS });
  }
}
