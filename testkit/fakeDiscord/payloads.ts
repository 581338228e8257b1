import type { FakeGuild, FakeUser } from "./types.js";

/** The objects Discord sends, built as Discord builds them: the gateway's events and the REST routes share them. */

/** The human who writes messages and runs commands unless a test names someone else; she owns the guilds. */
export const ALICE: FakeUser = { id: "100000000000000001", username: "alice" };
/**
 * Every permission bit (Discord's flags up to bit 50) but Administrator, which would override channel denies: the
 * @everyone role's permissions.
 */
export const ALL_PERMISSIONS = (((1n << 51n) - 1n) & ~(1n << 3n)).toString();
/** A role every fake guild has, with no permissions: for tests of role-based access. */
export const HELPER_ROLE_ID = "500000000000000001";

/** Discord's formula for which shard receives a guild's events. */
export function shardOf(guildId: string, shardCount: number): number {
  return Number((BigInt(guildId) >> 22n) % BigInt(shardCount));
}

export function userPayload(user: FakeUser) {
  return {
    id: user.id,
    username: user.username,
    global_name: user.username,
    discriminator: "0",
    avatar: null,
    ...(user.bot ? { bot: true } : {}),
  };
}

export function memberPayload() {
  return {
    roles: [],
    joined_at: new Date(0).toISOString(),
    deaf: false,
    mute: false,
    flags: 0,
    nick: null,
  };
}

/** A role as Discord sends it in a guild or in an option's resolved data. */
export function rolePayload(id: string, name: string, permissions: string, position: number) {
  return {
    id,
    name,
    permissions,
    position,
    color: 0,
    hoist: false,
    managed: false,
    mentionable: false,
    flags: 0,
  };
}

/** A message object as Discord sends it, with no mentions, attachments or embeds. */
export function messagePayload(id: string, channelId: string, author: FakeUser, content: string) {
  return {
    id,
    channel_id: channelId,
    author: userPayload(author),
    content,
    timestamp: new Date().toISOString(),
    edited_timestamp: null,
    tts: false,
    mention_everyone: false,
    mentions: [] as unknown[],
    mention_roles: [],
    attachments: [] as unknown[],
    embeds: [],
    pinned: false,
    type: 0,
    flags: 0,
  };
}

/** The message Discord answers a post or an edit by the bot with: what the body asked for, by the bot. */
export function botMessage(botUser: FakeUser, channelId: string, body: Record<string, unknown>, id: string) {
  return {
    ...messagePayload(id, channelId, botUser, typeof body.content === "string" ? body.content : ""),
    type: body.message_reference ? 19 : 0,
    flags: typeof body.flags === "number" ? body.flags : 0,
    ...(body.message_reference ? { message_reference: body.message_reference } : {}),
  };
}

/** GUILD_CREATE's guild: its roles, channels (with the bot's denies), threads, and the bot as its one member. */
export function guildPayload(guild: FakeGuild, botUser: FakeUser) {
  return {
    id: guild.id,
    name: guild.name,
    icon: null,
    owner_id: ALICE.id,
    afk_timeout: 300,
    verification_level: 0,
    default_message_notifications: 0,
    explicit_content_filter: 0,
    mfa_level: 0,
    features: [],
    roles: [
      rolePayload(guild.id, "@everyone", ALL_PERMISSIONS, 0),
      rolePayload(HELPER_ROLE_ID, "Helpers", "0", 1),
    ],
    emojis: [],
    stickers: [],
    channels: guild.channelIds.map((id, position) => ({
      id,
      type: 0,
      name: `channel-${position}`,
      position,
      permission_overwrites:
        guild.deniedInChannel?.[id] === undefined
          ? []
          : [{ id: guild.id, type: 0, allow: "0", deny: guild.deniedInChannel[id].toString() }],
      guild_id: guild.id,
    })),
    threads: Object.entries(guild.threads ?? {}).map(([id, parentId]) => threadPayload(guild, id, parentId)),
    members: [{ ...memberPayload(), user: userPayload(botUser) }],
    member_count: 2,
    large: false,
    unavailable: false,
    voice_states: [],
    presences: [],
    stage_instances: [],
    guild_scheduled_events: [],
    premium_tier: 0,
    preferred_locale: "en-US",
    nsfw_level: 0,
    joined_at: new Date(0).toISOString(),
  };
}

/** An active public thread (type 11) that Alice started. */
function threadPayload(guild: FakeGuild, id: string, parentId: string) {
  return {
    id,
    type: 11,
    name: `thread-${id.slice(-4)}`,
    parent_id: parentId,
    guild_id: guild.id,
    owner_id: ALICE.id,
    thread_metadata: {
      archived: false,
      auto_archive_duration: 1440,
      archive_timestamp: new Date(0).toISOString(),
      locked: false,
    },
    message_count: 0,
    member_count: 1,
  };
}
