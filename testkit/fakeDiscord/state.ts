import type { FakeGuild, FakeUser } from "./types.js";

const DISCORD_EPOCH = 1_420_070_400_000n;

/** An interaction token: when Discord created it, and whether its first response came. */
export interface InteractionToken {
  readonly createdAt: number;
  acknowledged: boolean;
}

/**
 * What the loopback Discord holds between requests: its ids, guilds and users, each channel's messages, the
 * messages deleted, the interaction tokens handed out. The gateway, the REST routes and the event senders all read
 * and change this one copy, as Discord's own clients all see one server.
 */
export class DiscordState {
  readonly botUser: FakeUser;
  readonly applicationId: string;
  readonly guilds: FakeGuild[];
  /** The default guild's thread, under its first channel. */
  readonly threadId: string;
  /** Members whose highest role is above the bot's: Discord refuses to time them out (50013). */
  readonly membersAboveBot = new Set<string>();
  /** Messages deleted so far: deleting one again is Unknown Message (10008), as on Discord. */
  readonly deletedMessages = new Set<string>();
  /** Each interaction's token: when it was created, and whether it has been acknowledged. */
  readonly interactions = new Map<string, InteractionToken>();
  /** Every message in each channel, oldest first, as GET /channels/:id/messages returns them. */
  private readonly channelMessages = new Map<string, Array<Record<string, unknown>>>();
  private snowflakeCounter = 0n;

  constructor(options: { guilds?: FakeGuild[]; denyInSecondChannel?: bigint; channels?: number } = {}) {
    this.botUser = { id: this.snowflake(), username: "moodbot", bot: true };
    this.applicationId = this.botUser.id;
    const channelIds = Array.from({ length: Math.max(2, options.channels ?? 2) }, () => this.snowflake());
    const denied =
      options.denyInSecondChannel === undefined
        ? {}
        : { deniedInChannel: { [channelIds[1] ?? ""]: options.denyInSecondChannel } };
    // Every fake guild has one thread under its first channel, for tests of chat in threads.
    this.threadId = this.snowflake();
    const threads = { [this.threadId]: channelIds[0] ?? "" };
    this.guilds = options.guilds ?? [
      { id: this.snowflake(), name: "Test Guild", channelIds, ...denied, threads },
    ];
  }

  /** The first guild's second channel: where a test may deny the bot permissions. */
  get secondChannelId(): string {
    const id = this.guilds[0]?.channelIds[1];
    if (!id) throw new Error("the fake Discord has no second channel");
    return id;
  }

  /** The first guild's first channel: where most tests talk. */
  get channelId(): string {
    const id = this.guilds[0]?.channelIds[0];
    if (!id) throw new Error("the fake Discord has no channel");
    return id;
  }

  get guildId(): string {
    const id = this.guilds[0]?.id;
    if (!id) throw new Error("the fake Discord has no guild");
    return id;
  }

  snowflake(): string {
    this.snowflakeCounter += 1n;
    return (((BigInt(Date.now()) - DISCORD_EPOCH) << 22n) + this.snowflakeCounter).toString();
  }

  /** A channel's messages, oldest first (the live list: an edit to one changes what the channel holds). */
  messagesIn(channelId: string): ReadonlyArray<Record<string, unknown>> {
    return this.channelMessages.get(channelId) ?? [];
  }

  /** The channel's copy of one message, if it holds one. */
  heldMessage(channelId: string, messageId: string): Record<string, unknown> | undefined {
    return this.channelMessages.get(channelId)?.find((message) => message.id === messageId);
  }

  remember(channelId: string, message: Record<string, unknown>): void {
    const list = this.channelMessages.get(channelId) ?? [];
    list.push(message);
    this.channelMessages.set(channelId, list);
  }

  forgetMessage(channelId: string, messageId: string): void {
    const list = this.channelMessages.get(channelId) ?? [];
    this.channelMessages.set(
      channelId,
      list.filter((message) => message.id !== messageId),
    );
  }
}
