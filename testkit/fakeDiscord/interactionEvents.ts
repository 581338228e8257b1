import type { Gateway } from "./gateway.js";
import {
  ALICE,
  ALL_PERMISSIONS,
  memberPayload,
  messagePayload,
  rolePayload,
  userPayload,
} from "./payloads.js";
import type { DiscordState } from "./state.js";
import type { FakeUser, InteractionContext } from "./types.js";

/** A command option; a subcommand (type 1) carries its own options. */
export interface CommandOption {
  name: string;
  type: number;
  value?: unknown;
  options?: unknown[];
}

/** The id and token of an interaction Discord created: the token is what its responses are sent with. */
export interface SentInteraction {
  id: string;
  token: string;
}

export type SlashCommandOptions = InteractionContext & { name: string; options?: CommandOption[] };

export type MessageCommandOptions = InteractionContext & {
  name: string;
  target: { id: string; content: string; author?: FakeUser };
};

export type ButtonClickOptions = InteractionContext & {
  customId: string;
  /** The message the button is on: by default an ephemeral one with no content. */
  message?: { id: string; content?: string; embeds?: unknown[]; components?: unknown[]; flags?: number };
};

export type UserCommandOptions = InteractionContext & { name: string; target: FakeUser };

type ResolvableOption = { type: number; value?: unknown; options?: unknown[] };

/**
 * The gateway's INTERACTION_CREATE for each kind a member can run: slash commands, context-menu commands and
 * button clicks. Each hands out a token, which the REST checks then hold to Discord's deadlines.
 */
export class InteractionEvents {
  constructor(
    private readonly state: DiscordState,
    private readonly gateway: Pick<Gateway, "dispatch">,
  ) {}

  /** Sends INTERACTION_CREATE for a slash command; returns the interaction's id and token. */
  sendSlashCommand(options: SlashCommandOptions): SentInteraction {
    return this.sendInteraction({
      ...options,
      data: {
        id: this.state.snowflake(),
        name: options.name,
        type: 1,
        options: options.options ?? [],
        resolved: this.resolvedOptions(options.options ?? []),
      },
    });
  }

  /** Sends INTERACTION_CREATE for a message context-menu command (right-click a message → Apps). */
  sendMessageCommand(options: MessageCommandOptions): SentInteraction {
    const author = options.target.author ?? ALICE;
    return this.sendInteraction({
      ...options,
      data: {
        id: this.state.snowflake(),
        name: options.name,
        type: 3,
        target_id: options.target.id,
        resolved: {
          messages: {
            [options.target.id]: messagePayload(
              options.target.id,
              this.state.channelId,
              author,
              options.target.content,
            ),
          },
        },
      },
    });
  }

  /**
   * Sends INTERACTION_CREATE for a click on a button (type 3, a message component) under one of the bot's
   * messages, as Discord does: the custom id, and the message the button is on.
   */
  sendButtonClick(options: ButtonClickOptions): SentInteraction {
    const channelId = options.channelId ?? this.state.channelId;
    const message = options.message ?? { id: this.state.snowflake(), flags: 64 };
    return this.sendInteraction({
      ...options,
      type: 3,
      message: {
        ...messagePayload(message.id, channelId, this.state.botUser, message.content ?? ""),
        embeds: message.embeds ?? [],
        components: message.components ?? [],
        flags: message.flags ?? 0,
      },
      data: { custom_id: options.customId, component_type: 2 },
    });
  }

  /** Sends INTERACTION_CREATE for a user context-menu command (right-click a member → Apps). */
  sendUserCommand(options: UserCommandOptions): SentInteraction {
    return this.sendInteraction({
      ...options,
      data: {
        id: this.state.snowflake(),
        name: options.name,
        type: 2,
        target_id: options.target.id,
        resolved: {
          users: { [options.target.id]: userPayload(options.target) },
          members: { [options.target.id]: { ...memberPayload(), permissions: ALL_PERMISSIONS } },
        },
      },
    });
  }

  /** Discord sends the channels (type 7) and roles (type 8) that options name, resolved, beside the options. */
  private resolvedOptions(options: ReadonlyArray<ResolvableOption>) {
    const channels: Record<string, unknown> = {};
    const roles: Record<string, unknown> = {};
    const visit = (list: ReadonlyArray<ResolvableOption>) => {
      for (const option of list) {
        const id = String(option.value);
        if (option.type === 7) {
          channels[id] = {
            id,
            type: 0,
            name: `channel-${id.slice(-4)}`,
            permissions: ALL_PERMISSIONS,
            guild_id: this.state.guildId,
          };
        }
        if (option.type === 8) {
          roles[id] = rolePayload(id, `role-${id.slice(-4)}`, "0", 1);
        }
        visit((option.options ?? []) as ResolvableOption[]);
      }
    };
    visit(options);
    return { channels, roles };
  }

  private sendInteraction(
    options: InteractionContext & { data: Record<string, unknown>; type?: number; message?: unknown },
  ): SentInteraction {
    const { state } = this;
    const id = state.snowflake();
    const token = `interaction-token-${id}`;
    state.interactions.set(token, { createdAt: Date.now(), acknowledged: false });
    const user = options.user ?? ALICE;
    const channelId = options.channelId ?? state.channelId;
    this.gateway.dispatch("INTERACTION_CREATE", {
      id,
      application_id: state.applicationId,
      type: options.type ?? 2,
      token,
      ...(options.message === undefined ? {} : { message: options.message }),
      version: 1,
      guild_id: state.guildId,
      channel_id: channelId,
      channel: { id: channelId, type: 0, name: "general", guild_id: state.guildId },
      member: {
        ...memberPayload(),
        roles: options.roles ?? [],
        user: userPayload(user),
        permissions: options.permissions ?? ALL_PERMISSIONS,
      },
      app_permissions: ALL_PERMISSIONS,
      locale: options.locale ?? "en-US",
      guild_locale: "en-US",
      entitlements: [],
      authorizing_integration_owners: { "0": state.guildId },
      context: 0,
      data: options.data,
    });
    return { id, token };
  }
}
