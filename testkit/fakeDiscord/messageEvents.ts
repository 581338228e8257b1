import type { Gateway } from "./gateway.js";
import { ALICE, memberPayload, messagePayload, userPayload } from "./payloads.js";
import type { DiscordState } from "./state.js";
import type { FakeUser } from "./types.js";

export interface SendMessageOptions {
  content: string;
  author?: FakeUser;
  channelId?: string;
  guildId?: string | null;
  mentionBot?: boolean;
  webhookId?: string;
  type?: number;
  attachments?: unknown[];
  /** The author's roles in the guild. */
  roles?: string[];
  /**
   * Makes this a reply to an earlier message (the bot's, by default). Discord sends the message replied to as
   * `referenced_message`: the channel's own copy when the fake holds one (a message the bot posted), else a
   * stand-in by `author`. The ping is not implied: Discord puts the replied-to author in `mentions` only when
   * the member leaves the reply's ping on, so a pinged reply to the bot is `{ replyTo, mentionBot: true }`.
   */
  replyTo?: { id: string; author?: FakeUser };
}

/** The gateway events about messages and guilds that members (and the tests for them) cause. */
export class MessageEvents {
  constructor(
    private readonly state: DiscordState,
    private readonly gateway: Pick<Gateway, "dispatch">,
  ) {}

  /** Sends MESSAGE_CREATE for a user's message and returns the message's id. */
  sendMessage(options: SendMessageOptions): string {
    const { state } = this;
    const author = options.author ?? ALICE;
    const id = state.snowflake();
    const guildId = options.guildId === undefined ? state.guildId : options.guildId;
    // A direct message lives in its own DM channel, never in a guild channel.
    const channelId = options.channelId ?? (guildId === null ? state.snowflake() : state.channelId);
    const mentions = options.mentionBot ? [{ ...userPayload(state.botUser), member: memberPayload() }] : [];
    const payload = {
      ...messagePayload(id, channelId, author, options.content),
      // Discord sends the channel's type with every message: 1 for a DM, 0 for a guild text channel.
      channel_type: guildId === null ? 1 : 0,
      ...(guildId === null
        ? {}
        : { guild_id: guildId, member: { ...memberPayload(), roles: options.roles ?? [] } }),
      mentions,
      attachments: options.attachments ?? [],
      type: options.type ?? 0,
      ...(options.webhookId ? { webhook_id: options.webhookId } : {}),
      ...(options.replyTo
        ? {
            type: 19,
            // Type 0 is a reply (1 a forward); a DM's reference has no guild_id.
            message_reference: {
              type: 0,
              message_id: options.replyTo.id,
              channel_id: channelId,
              ...(guildId === null ? {} : { guild_id: guildId }),
            },
            referenced_message: this.referencedMessage(channelId, options.replyTo),
          }
        : {}),
    };
    state.remember(channelId, payload);
    this.gateway.dispatch("MESSAGE_CREATE", payload);
    return id;
  }

  /** A member deleted a message: MESSAGE_DELETE, with only the ids, as Discord sends it. */
  deleteMessage(messageId: string, channelId = this.state.channelId): void {
    this.state.deletedMessages.add(messageId);
    this.state.forgetMessage(channelId, messageId);
    this.gateway.dispatch("MESSAGE_DELETE", {
      id: messageId,
      channel_id: channelId,
      guild_id: this.state.guildId,
    });
  }

  /** A moderator purged messages at once: MESSAGE_DELETE_BULK. */
  bulkDeleteMessages(messageIds: readonly string[], channelId = this.state.channelId): void {
    for (const id of messageIds) this.state.forgetMessage(channelId, id);
    this.gateway.dispatch("MESSAGE_DELETE_BULK", {
      ids: messageIds,
      channel_id: channelId,
      guild_id: this.state.guildId,
    });
  }

  /**
   * GUILD_DELETE: without `unavailable` the bot was removed from the server; with it, the server is in an outage
   * and its data must stay.
   */
  removeGuild(guildId = this.state.guildId, options: { outage?: boolean } = {}): void {
    this.gateway.dispatch("GUILD_DELETE", { id: guildId, ...(options.outage ? { unavailable: true } : {}) });
  }

  /**
   * The message a reply points to, as Discord nests it: the fake's copy of it when it has one (one level deep:
   * that copy's own `referenced_message` is left out), else a stand-in.
   */
  private referencedMessage(channelId: string, replyTo: { id: string; author?: FakeUser }) {
    const held = this.state.heldMessage(channelId, replyTo.id);
    if (held) {
      const { referenced_message: _nested, ...message } = held;
      return message;
    }
    return messagePayload(replyTo.id, channelId, replyTo.author ?? this.state.botUser, "earlier");
  }
}
