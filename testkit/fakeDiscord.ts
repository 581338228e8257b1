import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";
import { waitUntil } from "./waitUntil.js";

/**
 * A loopback Discord: the REST API and the gateway on 127.0.0.1, enough of both for discord.js 14 to log in,
 * receive guilds, messages and interactions, and answer them. Every REST request is recorded, so tests assert
 * on what the bot actually sent over HTTP.
 */

export interface RecordedRequest {
  readonly method: string;
  /** Path without the /api/v10 prefix, e.g. /channels/1/messages. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly body: unknown;
  readonly authorization: string | undefined;
  /** The X-Audit-Log-Reason header, decoded: what Discord's audit log shows for a moderation action. */
  readonly auditLogReason: string | undefined;
  readonly at: number;
  /** The status the fake answered with, once it has. */
  status?: number;
}

export interface FakeUser {
  readonly id: string;
  readonly username: string;
  readonly bot?: boolean;
}

export interface FakeGuild {
  readonly id: string;
  readonly name: string;
  readonly channelIds: readonly string[];
  /** Permission bits denied to @everyone (and so to the bot) in a channel, by channel id. */
  readonly deniedInChannel?: Readonly<Record<string, bigint>>;
  /** Active public threads: thread id → parent channel id. */
  readonly threads?: Readonly<Record<string, string>>;
}

/** Who runs an interaction, and where. */
export interface InteractionContext {
  readonly user?: FakeUser;
  readonly channelId?: string;
  /** The member's permissions in the channel, as Discord computes them (all but Administrator by default). */
  readonly permissions?: string;
  readonly roles?: string[];
  readonly locale?: string;
}

export interface FakeResponse {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

/** A file on the fake CDN. */
interface FakeFile {
  readonly body: Buffer;
  readonly contentType: string;
  readonly status: number;
  readonly location?: string;
}

/** Returns a response to override the default one, or undefined to let the request through. */
export type RequestOverride = (request: RecordedRequest) => FakeResponse | undefined;

const DISCORD_EPOCH = 1_420_070_400_000n;
/** The human who writes messages and runs commands unless a test names someone else; she owns the guilds. */
export const ALICE: FakeUser = { id: "100000000000000001", username: "alice" };
/**
 * Every permission bit (Discord's flags up to bit 50) but Administrator, which would override channel denies: the
 * @everyone role's permissions.
 */
const ALL_PERMISSIONS = (((1n << 51n) - 1n) & ~(1n << 3n)).toString();
const HEARTBEAT_INTERVAL_MS = 41_250;
/** Every other route's bucket: far from its limit, as a quiet bot's would be. */
const GENERIC_RATE_LIMIT_HEADERS: Readonly<Record<string, string>> = {
  "x-ratelimit-limit": "50",
  "x-ratelimit-remaining": "49",
  "x-ratelimit-reset-after": "1.000",
};
/** Events a disconnected session keeps for its RESUME. */
const SESSION_EVENTS_KEPT = 1_000;
/** Discord's reasons for the gateway close codes the fake can send. */
const CLOSE_REASONS: Readonly<Record<number, string>> = {
  4004: "Authentication failed.",
  4014: "Disallowed intent(s).",
};

interface GatewaySession {
  readonly id: string;
  readonly intents: number;
  readonly shard: [number, number];
  sequence: number;
  readonly events: Array<{ op: 0; t: string; s: number; d: unknown }>;
  /** The connection the session runs on; undefined while disconnected. */
  socket: WebSocket | undefined;
}

export class FakeDiscord {
  readonly requests: RecordedRequest[] = [];
  /** Every message in each channel, oldest first, as GET /channels/:id/messages returns them. */
  private readonly channelMessages = new Map<string, Array<Record<string, unknown>>>();
  /** Files its CDN serves, by path: the attachments of the messages a test sends. */
  private readonly files = new Map<string, FakeFile>();
  /** The id the fake gave each message the bot posted, by the request that posted it. */
  private readonly responses = new Map<RecordedRequest, string>();
  readonly identifies: unknown[] = [];
  /**
   * Every READY the gateway sent, one per session started: from then on the session receives the events a test
   * sends (discord.js holds them until its guilds are in). A bot process is ready for traffic once its READY is here.
   */
  readonly readies: Array<{
    readonly sessionId: string;
    readonly shard: readonly [number, number];
    readonly at: number;
  }> = [];
  /** RESUME payloads received: a dropped session that discord.js resumed instead of re-identifying. */
  readonly resumes: unknown[] = [];
  /** When true, a RESUME gets Invalid Session (op 9, not resumable), as Discord answers for an expired session. */
  rejectResumes = false;
  readonly botUser: FakeUser;
  readonly applicationId: string;
  readonly guilds: FakeGuild[];
  private readonly sockets = new Set<WebSocket>();
  /**
   * Gateway sessions, by id. A session outlives its connection: the events dispatched while it is disconnected are
   * kept, and a RESUME replays those after the sequence number it names, as Discord does.
   */
  private readonly sessions = new Map<string, GatewaySession>();
  /** The close code IDENTIFY gets instead of READY: 4004 for a bad token, 4014 for disallowed intents. */
  closeOnIdentify: number | undefined;
  /** While set, READY waits for this promise: a gateway that is slow to let the bot in. */
  readyGate: Promise<void> | undefined;
  /** How long after INTERACTION_CREATE the first response may come (Discord: 3 s). */
  interactionDeadlineMs = 3_000;
  /** How long an interaction token works for follow-ups and edits (Discord: 15 minutes). */
  interactionTokenLifetimeMs = 15 * 60_000;
  /** Each interaction's token: when it was created, and whether it has been acknowledged. */
  private readonly interactions = new Map<string, { createdAt: number; acknowledged: boolean }>();
  /** Reactions each channel may add per window, as Discord buckets the reaction route. */
  reactionLimit = { perWindow: 1, windowMs: 250 };
  private readonly reactionBuckets = new Map<string, { remaining: number; resetAt: number }>();
  /** 429s answered on the reaction route. */
  rateLimited = 0;
  /** Rate-limit headers a request that passed its bucket check answers with. */
  private readonly pendingHeaders = new Map<RecordedRequest, Record<string, string>>();
  /** Messages deleted so far: deleting one again is Unknown Message (10008), as on Discord. */
  private readonly deletedMessages = new Set<string>();
  /** Members whose highest role is above the bot's: Discord refuses to time them out (50013). */
  readonly membersAboveBot = new Set<string>();
  /** What GET /gateway/bot recommends. */
  recommendedShards = 1;
  private readonly overrides: RequestOverride[] = [];
  private snowflakeCounter = 0n;
  private server: Server | undefined;
  private wss: WebSocketServer | undefined;
  private port = 0;

  /** The default guild's thread, under its first channel. */
  readonly threadId: string;

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

  /** The REST base to hand to discord.js as `rest.api` (DISCORD_API_URL). */
  get apiUrl(): string {
    return `http://127.0.0.1:${this.port}/api`;
  }

  /**
   * Puts a file on the fake CDN (this server's /attachments/…, on 127.0.0.1) and returns the attachment object a
   * message carries, as Discord's gateway sends it. `status` and `location` make the download fail or redirect.
   */
  attachFile(
    name: string,
    body: string | Buffer,
    options: { contentType?: string; status?: number; location?: string; declaredSize?: number } = {},
  ): Record<string, unknown> {
    const id = this.snowflake();
    const path = `/attachments/${this.channelId}/${id}/${encodeURIComponent(name)}`;
    const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
    this.files.set(path, {
      body: bytes,
      contentType: options.contentType ?? "text/plain; charset=utf-8",
      status: options.status ?? 200,
      ...(options.location === undefined ? {} : { location: options.location }),
    });
    const url = `http://127.0.0.1:${this.port}${path}`;
    return {
      id,
      filename: name,
      size: options.declaredSize ?? bytes.length,
      url,
      proxy_url: url,
      ...(options.contentType === undefined ? {} : { content_type: options.contentType }),
    };
  }

  /** The CDN paths a client downloaded, in order. */
  readonly fileDownloads: string[] = [];

  get gatewayUrl(): string {
    return `ws://127.0.0.1:${this.port}/gateway`;
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

  get connectedSockets(): number {
    return this.sockets.size;
  }

  snowflake(): string {
    this.snowflakeCounter += 1n;
    return (((BigInt(Date.now()) - DISCORD_EPOCH) << 22n) + this.snowflakeCounter).toString();
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      this.handleHttp(req, res).catch((error: unknown) => {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ message: String(error), code: 0 }));
      });
    });
    this.wss = new WebSocketServer({ noServer: true });
    this.server.on("upgrade", (req, socket, head) => {
      this.wss?.handleUpgrade(req, socket, head, (ws) => this.handleSocket(ws));
    });
    this.server.listen(0, "127.0.0.1");
    await once(this.server, "listening");
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.terminate();
    this.wss?.close();
    if (this.server) {
      this.server.closeAllConnections();
      await new Promise<void>((resolve) => this.server?.close(() => resolve()));
    }
  }

  /** Adds a response override; the first override that answers wins. Returns a function that removes it. */
  override(override: RequestOverride): () => void {
    this.overrides.push(override);
    return () => {
      const index = this.overrides.indexOf(override);
      if (index >= 0) this.overrides.splice(index, 1);
    };
  }

  /** Every request about one channel: reactions, messages, typing. */
  requestsTo(channelId: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path.startsWith(`/channels/${channelId}/`));
  }

  /**
   * What the bot's messages in a channel finally say: each posted message with its last edit applied, in order.
   * The fake gives each posted message an id; edits are matched to it by that id.
   */
  finalMessages(channelId?: string): Array<{ id: string; content: string; reference: unknown }> {
    const messages: Array<{ id: string; content: string; reference: unknown }> = [];
    for (const request of this.requests) {
      const body = (request.body ?? {}) as { content?: string; message_reference?: unknown };
      const posted = request.path.match(/^\/channels\/(\d+)\/messages$/);
      if (request.method === "POST" && posted && (channelId === undefined || posted[1] === channelId)) {
        const id = this.responses.get(request) ?? "";
        messages.push({ id, content: body.content ?? "", reference: body.message_reference });
      }
      const edited = request.path.match(/^\/channels\/\d+\/messages\/(\d+)$/);
      if (request.method === "PATCH" && edited) {
        const target = messages.find((m) => m.id === edited[1]);
        if (target) target.content = body.content ?? target.content;
      }
      if (request.method === "DELETE" && edited) {
        const index = messages.findIndex((m) => m.id === edited[1]);
        if (index >= 0) messages.splice(index, 1);
      }
    }
    return messages;
  }

  /** The id Discord gave the message a POST created, once it answered; undefined for any other request. */
  postedMessageId(request: RecordedRequest): string | undefined {
    return this.responses.get(request);
  }

  requestsMatching(method: string, pathPattern: RegExp): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && pathPattern.test(r.path));
  }

  /** The matching requests that Discord accepted (2xx): a 429 that discord.js retried counts once. */
  acceptedMatching(method: string, pathPattern: RegExp): RecordedRequest[] {
    return this.requestsMatching(method, pathPattern).filter(
      (r) => (r.status ?? 0) >= 200 && (r.status ?? 0) < 300,
    );
  }

  /** Waits, for at most `timeoutMs`, until `count` READY events were sent in all; returns them. */
  async waitForReadies(count: number, timeoutMs = 60_000): Promise<FakeDiscord["readies"]> {
    await waitUntil(() => this.readies.length >= count, {
      timeoutMs,
      failure: () => `only ${this.readies.length} of ${count} gateway sessions got READY in ${timeoutMs} ms`,
    });
    return this.readies;
  }

  /** Waits, for at most `timeoutMs`, until `count` requests match; returns them. */
  async waitForRequests(
    method: string,
    pathPattern: RegExp,
    count = 1,
    timeoutMs = 20_000,
  ): Promise<RecordedRequest[]> {
    await waitUntil(() => this.requestsMatching(method, pathPattern).length >= count, {
      timeoutMs,
      failure: () => {
        const seen = this.requests.map((r) => `${r.method} ${r.path}`).join("\n  ");
        return `timed out waiting for ${count}× ${method} ${pathPattern}; saw:\n  ${seen}`;
      },
    });
    return this.requestsMatching(method, pathPattern);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Gateway events

  /** Sends MESSAGE_CREATE for a user's message and returns the message's id. */
  sendMessage(options: {
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
  }): string {
    const author = options.author ?? ALICE;
    const id = this.snowflake();
    const guildId = options.guildId === undefined ? this.guildId : options.guildId;
    // A direct message lives in its own DM channel, never in a guild channel.
    const channelId = options.channelId ?? (guildId === null ? this.snowflake() : this.channelId);
    const mentions = options.mentionBot
      ? [{ ...this.userPayload(this.botUser), member: this.memberPayload() }]
      : [];
    const payload = {
      ...this.messagePayload(id, channelId, author, options.content),
      // Discord sends the channel's type with every message: 1 for a DM, 0 for a guild text channel.
      channel_type: guildId === null ? 1 : 0,
      ...(guildId === null
        ? {}
        : { guild_id: guildId, member: { ...this.memberPayload(), roles: options.roles ?? [] } }),
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
    this.remember(channelId, payload);
    this.dispatch("MESSAGE_CREATE", payload);
    return id;
  }

  /** Sends INTERACTION_CREATE for a slash command; returns the interaction's id and token. */
  sendSlashCommand(
    options: InteractionContext & {
      name: string;
      /** Command options; a subcommand (type 1) carries its own options. */
      options?: Array<{ name: string; type: number; value?: unknown; options?: unknown[] }>;
    },
  ): { id: string; token: string } {
    return this.sendInteraction({
      ...options,
      data: {
        id: this.snowflake(),
        name: options.name,
        type: 1,
        options: options.options ?? [],
        resolved: this.resolvedOptions(options.options ?? []),
      },
    });
  }

  /** Discord sends the channels (type 7) and roles (type 8) that options name, resolved, beside the options. */
  private resolvedOptions(options: ReadonlyArray<{ type: number; value?: unknown; options?: unknown[] }>) {
    const channels: Record<string, unknown> = {};
    const roles: Record<string, unknown> = {};
    const visit = (list: ReadonlyArray<{ type: number; value?: unknown; options?: unknown[] }>) => {
      for (const option of list) {
        const id = String(option.value);
        if (option.type === 7) {
          channels[id] = {
            id,
            type: 0,
            name: `channel-${id.slice(-4)}`,
            permissions: ALL_PERMISSIONS,
            guild_id: this.guildId,
          };
        }
        if (option.type === 8) {
          roles[id] = rolePayload(id, `role-${id.slice(-4)}`, "0", 1);
        }
        visit((option.options ?? []) as Array<{ type: number; value?: unknown; options?: unknown[] }>);
      }
    };
    visit(options);
    return { channels, roles };
  }

  /** Sends INTERACTION_CREATE for a message context-menu command (right-click a message → Apps). */
  sendMessageCommand(
    options: InteractionContext & {
      name: string;
      target: { id: string; content: string; author?: FakeUser };
    },
  ): { id: string; token: string } {
    const author = options.target.author ?? ALICE;
    return this.sendInteraction({
      ...options,
      data: {
        id: this.snowflake(),
        name: options.name,
        type: 3,
        target_id: options.target.id,
        resolved: {
          messages: {
            [options.target.id]: this.messagePayload(
              options.target.id,
              this.channelId,
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
  sendButtonClick(
    options: InteractionContext & {
      customId: string;
      /** The message the button is on: by default an ephemeral one with no content. */
      message?: { id: string; content?: string; embeds?: unknown[]; components?: unknown[]; flags?: number };
    },
  ): { id: string; token: string } {
    const channelId = options.channelId ?? this.channelId;
    const message = options.message ?? { id: this.snowflake(), flags: 64 };
    return this.sendInteraction({
      ...options,
      type: 3,
      message: {
        ...this.messagePayload(message.id, channelId, this.botUser, message.content ?? ""),
        embeds: message.embeds ?? [],
        components: message.components ?? [],
        flags: message.flags ?? 0,
      },
      data: { custom_id: options.customId, component_type: 2 },
    });
  }

  /** Sends INTERACTION_CREATE for a user context-menu command (right-click a member → Apps). */
  sendUserCommand(options: InteractionContext & { name: string; target: FakeUser }): {
    id: string;
    token: string;
  } {
    return this.sendInteraction({
      ...options,
      data: {
        id: this.snowflake(),
        name: options.name,
        type: 2,
        target_id: options.target.id,
        resolved: {
          users: { [options.target.id]: this.userPayload(options.target) },
          members: { [options.target.id]: { ...this.memberPayload(), permissions: ALL_PERMISSIONS } },
        },
      },
    });
  }

  /** A member deleted a message: MESSAGE_DELETE, with only the ids, as Discord sends it. */
  deleteMessage(messageId: string, channelId = this.channelId): void {
    this.deletedMessages.add(messageId);
    this.forgetMessage(channelId, messageId);
    this.dispatch("MESSAGE_DELETE", { id: messageId, channel_id: channelId, guild_id: this.guildId });
  }

  /** A moderator purged messages at once: MESSAGE_DELETE_BULK. */
  bulkDeleteMessages(messageIds: readonly string[], channelId = this.channelId): void {
    for (const id of messageIds) this.forgetMessage(channelId, id);
    this.dispatch("MESSAGE_DELETE_BULK", { ids: messageIds, channel_id: channelId, guild_id: this.guildId });
  }

  /**
   * GUILD_DELETE: without `unavailable` the bot was removed from the server; with it, the server is in an outage
   * and its data must stay.
   */
  removeGuild(guildId = this.guildId, options: { outage?: boolean } = {}): void {
    this.dispatch("GUILD_DELETE", { id: guildId, ...(options.outage ? { unavailable: true } : {}) });
  }

  private forgetMessage(channelId: string, messageId: string): void {
    const list = this.channelMessages.get(channelId) ?? [];
    this.channelMessages.set(
      channelId,
      list.filter((message) => message.id !== messageId),
    );
  }

  private sendInteraction(
    options: InteractionContext & { data: Record<string, unknown>; type?: number; message?: unknown },
  ): {
    id: string;
    token: string;
  } {
    const id = this.snowflake();
    const token = `interaction-token-${id}`;
    this.interactions.set(token, { createdAt: Date.now(), acknowledged: false });
    const user = options.user ?? ALICE;
    const channelId = options.channelId ?? this.channelId;
    this.dispatch("INTERACTION_CREATE", {
      id,
      application_id: this.applicationId,
      type: options.type ?? 2,
      token,
      ...(options.message === undefined ? {} : { message: options.message }),
      version: 1,
      guild_id: this.guildId,
      channel_id: channelId,
      channel: { id: channelId, type: 0, name: "general", guild_id: this.guildId },
      member: {
        ...this.memberPayload(),
        roles: options.roles ?? [],
        user: this.userPayload(user),
        permissions: options.permissions ?? ALL_PERMISSIONS,
      },
      app_permissions: ALL_PERMISSIONS,
      locale: options.locale ?? "en-US",
      guild_locale: "en-US",
      entitlements: [],
      authorizing_integration_owners: { "0": this.guildId },
      context: 0,
      data: options.data,
    });
    return { id, token };
  }

  /** Sends an event to every session that wants it; a disconnected session keeps it for its RESUME. */
  dispatch(type: string, data: unknown): void {
    for (const session of this.sessions.values()) {
      if (!this.wants(session, type, data)) continue;
      session.sequence += 1;
      const event = { op: 0 as const, t: type, s: session.sequence, d: data };
      session.events.push(event);
      if (session.events.length > SESSION_EVENTS_KEPT) session.events.shift();
      if (session.socket?.readyState === session.socket?.OPEN) session.socket?.send(JSON.stringify(event));
    }
  }

  /** Asks every connection to reconnect and resume (opcode 7), as Discord does before moving a session. */
  requestReconnect(): void {
    for (const socket of this.sockets) socket.send(JSON.stringify({ op: 7, d: null }));
  }

  /**
   * Discord sends a guild's events only to the shard that owns the guild, and direct-message events (which belong
   * to shard 0) only to sessions that identified with the DirectMessages intent.
   */
  private wants(session: GatewaySession, type: string, data: unknown): boolean {
    const DIRECT_MESSAGES = 1 << 12;
    const guildId = (data as { guild_id?: string }).guild_id;
    const [shardId, shardCount] = session.shard;
    if (guildId) return FakeDiscord.shardOf(guildId, shardCount) === shardId;
    const isDm = type.startsWith("MESSAGE_");
    return !isDm || (shardId === 0 && (session.intents & DIRECT_MESSAGES) !== 0);
  }

  /** A role every fake guild has, with no permissions: for tests of role-based access. */
  static readonly HELPER_ROLE_ID = "500000000000000001";

  /** Discord's formula for which shard receives a guild's events. */
  static shardOf(guildId: string, shardCount: number): number {
    return Number((BigInt(guildId) >> 22n) % BigInt(shardCount));
  }

  /** Closes every gateway connection with a close code, as Discord does when it drops a session. */
  closeGateway(code: number): void {
    for (const socket of this.sockets) socket.close(code, "closed by the fake Discord");
  }

  // -------------------------------------------------------------------------------------------------------------

  private userPayload(user: FakeUser) {
    return {
      id: user.id,
      username: user.username,
      global_name: user.username,
      discriminator: "0",
      avatar: null,
      ...(user.bot ? { bot: true } : {}),
    };
  }

  private memberPayload() {
    return {
      roles: [],
      joined_at: new Date(0).toISOString(),
      deaf: false,
      mute: false,
      flags: 0,
      nick: null,
    };
  }

  private guildPayload(guild: FakeGuild) {
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
        rolePayload(FakeDiscord.HELPER_ROLE_ID, "Helpers", "0", 1),
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
      threads: Object.entries(guild.threads ?? {}).map(([id, parentId]) => ({
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
      })),
      members: [{ ...this.memberPayload(), user: this.userPayload(this.botUser) }],
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

  private handleSocket(ws: WebSocket): void {
    this.sockets.add(ws);
    ws.on("close", () => {
      this.sockets.delete(ws);
      for (const session of this.sessions.values()) if (session.socket === ws) session.socket = undefined;
    });
    ws.send(JSON.stringify({ op: 10, d: { heartbeat_interval: HEARTBEAT_INTERVAL_MS } }));
    ws.on("message", (raw) => {
      const payload = JSON.parse(String(raw)) as { op: number; d: unknown };
      if (payload.op === 1) ws.send(JSON.stringify({ op: 11 }));
      else if (payload.op === 2) this.identify(ws, payload.d);
      else if (payload.op === 6) this.resume(ws, payload.d as { session_id?: string; seq?: number });
    });
  }

  private identify(ws: WebSocket, data: unknown): void {
    this.identifies.push(data);
    if (this.closeOnIdentify !== undefined) {
      ws.close(this.closeOnIdentify, CLOSE_REASONS[this.closeOnIdentify] ?? "closed by the fake Discord");
      return;
    }
    const gate = this.readyGate;
    if (gate) {
      void gate.then(() => {
        if (ws.readyState === ws.OPEN) this.startSession(ws, data);
      });
      return;
    }
    this.startSession(ws, data);
  }

  private startSession(ws: WebSocket, data: unknown): void {
    const identify = data as { intents?: number; shard?: [number, number] };
    const session: GatewaySession = {
      id: `session-${this.snowflake()}`,
      intents: Number(identify.intents ?? 0),
      shard: identify.shard ?? [0, 1],
      sequence: 0,
      events: [],
      socket: ws,
    };
    this.sessions.set(session.id, session);
    this.sendReady(session);
  }

  /** RESUME: the session's missed events, in order, then RESUMED; or Invalid Session for one that is gone. */
  private resume(ws: WebSocket, data: { session_id?: string; seq?: number }): void {
    this.resumes.push(data);
    const session = this.sessions.get(data.session_id ?? "");
    if (this.rejectResumes || !session) {
      ws.send(JSON.stringify({ op: 9, d: false }));
      return;
    }
    session.socket = ws;
    for (const event of session.events) if (event.s > (data.seq ?? 0)) ws.send(JSON.stringify(event));
    session.sequence += 1;
    ws.send(JSON.stringify({ op: 0, t: "RESUMED", s: session.sequence, d: {} }));
  }

  private guildsOf(session: GatewaySession): FakeGuild[] {
    const [shardId, shardCount] = session.shard;
    return this.guilds.filter((guild) => FakeDiscord.shardOf(guild.id, shardCount) === shardId);
  }

  private sendReady(session: GatewaySession): void {
    const send = (t: string, d: unknown) => {
      session.sequence += 1;
      const event = { op: 0 as const, t, s: session.sequence, d };
      session.events.push(event);
      session.socket?.send(JSON.stringify(event));
    };
    send("READY", {
      v: 10,
      user: { ...this.userPayload(this.botUser), verified: true, mfa_enabled: false, flags: 0 },
      guilds: this.guildsOf(session).map((g) => ({ id: g.id, unavailable: true })),
      session_id: session.id,
      resume_gateway_url: this.gatewayUrl,
      shard: session.shard,
      application: { id: this.applicationId, flags: 0 },
      private_channels: [],
    });
    for (const guild of this.guildsOf(session)) send("GUILD_CREATE", this.guildPayload(guild));
    this.readies.push({ sessionId: session.id, shard: session.shard, at: Date.now() });
  }

  private async handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (url.pathname.startsWith("/attachments/")) {
      this.serveFile(url.pathname, res);
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const path = decodeURIComponent(url.pathname).replace(/^\/api\/v\d+/, "");
    const request: RecordedRequest = {
      method: req.method ?? "GET",
      path,
      query: url.searchParams,
      body: parseBody(raw, req.headers["content-type"]),
      authorization: req.headers.authorization,
      auditLogReason: auditLogReasonOf(req.headers["x-audit-log-reason"]),
      at: Date.now(),
    };
    this.requests.push(request);
    let response: FakeResponse | undefined;
    for (const override of this.overrides) {
      response = override(request);
      if (response) break;
    }
    response ??= this.checks(request) ?? this.route(request);
    request.status = response.status;
    const postedId = (response.body as { id?: unknown } | undefined)?.id;
    if (request.method === "POST" && typeof postedId === "string") this.responses.set(request, postedId);
    const json = response.body === undefined ? {} : { "content-type": "application/json" };
    const limits = this.pendingHeaders.get(request) ?? GENERIC_RATE_LIMIT_HEADERS;
    this.pendingHeaders.delete(request);
    res.writeHead(response.status, { ...json, ...limits, ...response.headers });
    res.end(response.body === undefined ? undefined : JSON.stringify(response.body));
  }

  /** The fake CDN: raw bytes, or a redirect, with no rate-limit headers (Discord's CDN sends none). */
  private serveFile(path: string, res: ServerResponse): void {
    this.fileDownloads.push(path);
    const file = this.files.get(path);
    if (!file) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    const headers: Record<string, string | number> = {
      "content-type": file.contentType,
      "content-length": file.body.length,
    };
    if (file.location !== undefined) headers.location = file.location;
    res.writeHead(file.status, headers).end(file.body);
  }

  /** What Discord refuses before it does anything: bad message bodies, rate limits, late or repeated responses. */
  private checks(request: RecordedRequest): FakeResponse | undefined {
    return (
      this.checkMessageBody(request) ?? this.checkReactionBucket(request) ?? this.checkInteraction(request)
    );
  }

  /** Over 2000 characters: 50035. Nothing to show at all: 50006. For every route that creates or edits a message. */
  private checkMessageBody(request: RecordedRequest): FakeResponse | undefined {
    const { method, path } = request;
    const createsOrEdits =
      (method === "POST" && /^\/channels\/\d+\/messages$/.test(path)) ||
      (method === "PATCH" && /^\/channels\/\d+\/messages\/\d+$/.test(path)) ||
      (method === "PATCH" && /^\/webhooks\/\d+\/[^/]+\/messages\/(@original|\d+)$/.test(path)) ||
      (method === "POST" && /^\/webhooks\/\d+\/[^/]+$/.test(path));
    const callback = method === "POST" && /^\/interactions\/\d+\/[^/]+\/callback$/.test(path);
    const raw = (request.body ?? {}) as Record<string, unknown>;
    // A callback carries its message under data, and only type 4 (a reply) must have one.
    const body = callback ? ((raw.data ?? {}) as Record<string, unknown>) : raw;
    if (!createsOrEdits && !(callback && raw.type === 4)) return undefined;
    const content = typeof body.content === "string" ? body.content : "";
    if (content.length > 2000) {
      return {
        status: 400,
        body: {
          message: "Invalid Form Body",
          code: 50035,
          errors: {
            content: {
              _errors: [{ code: "BASE_TYPE_MAX_LENGTH", message: "Must be 2000 or fewer in length." }],
            },
          },
        },
      };
    }
    const hasSomething = (key: string) => Array.isArray(body[key]) && (body[key] as unknown[]).length > 0;
    const editsFlagsOnly = method === "PATCH" && body.content === undefined;
    if (
      content === "" &&
      !editsFlagsOnly &&
      !["embeds", "files", "attachments", "sticker_ids", "components"].some(hasSomething)
    ) {
      return { status: 400, body: { message: "Cannot send an empty message", code: 50006 } };
    }
    return undefined;
  }

  /** Reactions are bucketed per channel; a request before the bucket resets gets a 429 with retry_after. */
  private checkReactionBucket(request: RecordedRequest): FakeResponse | undefined {
    const match =
      request.method === "PUT" && request.path.match(/^\/channels\/(\d+)\/messages\/\d+\/reactions\//);
    if (!match) return undefined;
    const now = Date.now();
    const key = match[1] ?? "";
    let bucket = this.reactionBuckets.get(key);
    if (!bucket || now >= bucket.resetAt) {
      bucket = { remaining: this.reactionLimit.perWindow, resetAt: now + this.reactionLimit.windowMs };
      this.reactionBuckets.set(key, bucket);
    }
    const resetAfter = Math.max(0, bucket.resetAt - now) / 1000;
    const headers = {
      "x-ratelimit-limit": String(this.reactionLimit.perWindow),
      "x-ratelimit-reset": String(bucket.resetAt / 1000),
      "x-ratelimit-reset-after": resetAfter.toFixed(3),
      "x-ratelimit-bucket": `reactions-${key}`,
    };
    if (bucket.remaining <= 0) {
      this.rateLimited += 1;
      return {
        status: 429,
        body: { message: "You are being rate limited.", retry_after: resetAfter, global: false },
        headers: {
          ...headers,
          "x-ratelimit-remaining": "0",
          "x-ratelimit-scope": "user",
          "retry-after": String(Math.ceil(resetAfter)),
        },
      };
    }
    bucket.remaining -= 1;
    // Let the request through to its route, carrying the bucket's headers.
    this.pendingHeaders.set(request, { ...headers, "x-ratelimit-remaining": String(bucket.remaining) });
    return undefined;
  }

  /** The first response within the deadline, once; edits and follow-ups while the token lives. */
  private checkInteraction(request: RecordedRequest): FakeResponse | undefined {
    const callback =
      request.method === "POST" && request.path.match(/^\/interactions\/\d+\/([^/]+)\/callback$/);
    const webhook = request.path.match(/^\/webhooks\/\d+\/([^/]+)(\/|$)/);
    const token = callback ? callback[1] : webhook ? webhook[1] : undefined;
    if (token === undefined) return undefined;
    const interaction = this.interactions.get(token);
    const age = interaction === undefined ? Number.POSITIVE_INFINITY : Date.now() - interaction.createdAt;
    if (callback) {
      if (!interaction || age > this.interactionDeadlineMs) {
        return { status: 404, body: { message: "Unknown interaction", code: 10062 } };
      }
      if (interaction.acknowledged) {
        return { status: 400, body: { message: "Interaction has already been acknowledged.", code: 40060 } };
      }
      interaction.acknowledged = true;
      return undefined;
    }
    if (age > this.interactionTokenLifetimeMs) {
      return { status: 401, body: { message: "Invalid Webhook Token", code: 50027 } };
    }
    return undefined;
  }

  private route(request: RecordedRequest): FakeResponse {
    const { method, path } = request;
    const body = (request.body ?? {}) as Record<string, unknown>;
    let match: RegExpMatchArray | null;
    if (method === "GET" && path === "/gateway/bot") {
      return {
        status: 200,
        body: {
          url: this.gatewayUrl,
          shards: this.recommendedShards,
          session_start_limit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 1 },
        },
      };
    }
    if (method === "GET" && path === "/users/@me")
      return { status: 200, body: this.userPayload(this.botUser) };
    if (method === "PUT" && /^\/channels\/\d+\/messages\/\d+\/reactions\/[^/]+\/@me$/.test(path)) {
      return { status: 204 };
    }
    if (method === "POST" && /^\/channels\/\d+\/typing$/.test(path)) return { status: 204 };
    match = path.match(/^\/channels\/(\d+)\/messages$/);
    if (method === "GET" && match) {
      const limit = Math.min(100, Number(request.query.get("limit") ?? 50));
      const all = this.channelMessages.get(match[1] ?? "") ?? [];
      return { status: 200, body: all.slice(-limit).reverse() };
    }
    if (method === "POST" && match) {
      const message = this.botMessage(match[1] ?? "", body);
      this.remember(match[1] ?? "", message);
      return { status: 200, body: message };
    }
    match = path.match(/^\/channels\/(\d+)\/messages\/(\d+)$/);
    if (method === "PATCH" && match) {
      // The channel's copy takes the edit, so that a later reply to this message quotes what it now says.
      const held = this.channelMessages.get(match[1] ?? "")?.find((message) => message.id === match?.[2]);
      if (held && typeof body.content === "string") held.content = body.content;
      return { status: 200, body: held ?? this.botMessage(match[1] ?? "", body, match[2]) };
    }
    match = path.match(/^\/channels\/(\d+)\/messages\/(\d+)$/);
    if (method === "DELETE" && match) {
      const [, channelId = "", messageId = ""] = match;
      if (this.deletedMessages.has(messageId)) {
        return { status: 404, body: { message: "Unknown Message", code: 10008 } };
      }
      // Discord tells every client, the bot included, that the message is gone.
      this.deleteMessage(messageId, channelId);
      return { status: 204 };
    }
    match = path.match(/^\/guilds\/(\d+)\/members\/(\d+)$/);
    if (method === "PATCH" && match) {
      // Discord refuses to act on a member whose highest role is above the bot's.
      if (this.membersAboveBot.has(match[2] ?? "")) {
        return { status: 403, body: { message: "Missing Permissions", code: 50013 } };
      }
      return {
        status: 200,
        body: {
          ...this.memberPayload(),
          user: this.userPayload({ id: match[2] ?? "", username: "member" }),
          communication_disabled_until: body.communication_disabled_until ?? null,
        },
      };
    }
    match = path.match(/^\/interactions\/(\d+)\/[^/]+\/callback$/);
    if (method === "POST" && match) {
      if (request.query.get("with_response") !== "true") return { status: 204 };
      return {
        status: 200,
        body: { interaction: { id: match[1], type: 2 }, resource: { type: body.type } },
      };
    }
    match = path.match(/^\/webhooks\/\d+\/[^/]+\/messages\/(@original|\d+)$/);
    if (method === "PATCH" && match) return { status: 200, body: this.botMessage(this.channelId, body) };
    if (method === "POST" && /^\/webhooks\/\d+\/[^/]+$/.test(path)) {
      return { status: 200, body: this.botMessage(this.channelId, body) };
    }
    if (method === "PUT" && /^\/applications\/\d+(\/guilds\/\d+)?\/commands$/.test(path)) {
      const commands = Array.isArray(request.body) ? request.body : [];
      return {
        status: 200,
        body: commands.map((command: Record<string, unknown>) => ({
          ...command,
          id: this.snowflake(),
          application_id: this.applicationId,
          version: this.snowflake(),
        })),
      };
    }
    return { status: 404, body: { message: `Unknown route ${method} ${path}`, code: 0 } };
  }

  /**
   * The message a reply points to, as Discord nests it: the fake's copy of it when it has one (one level deep:
   * that copy's own `referenced_message` is left out), else a stand-in.
   */
  private referencedMessage(channelId: string, replyTo: { id: string; author?: FakeUser }) {
    const held = this.channelMessages.get(channelId)?.find((message) => message.id === replyTo.id);
    if (held) {
      const { referenced_message: _nested, ...message } = held;
      return message;
    }
    return this.messagePayload(replyTo.id, channelId, replyTo.author ?? this.botUser, "earlier");
  }

  private remember(channelId: string, message: Record<string, unknown>): void {
    const list = this.channelMessages.get(channelId) ?? [];
    list.push(message);
    this.channelMessages.set(channelId, list);
  }

  /** A message object as Discord sends it, with no mentions, attachments or embeds. */
  private messagePayload(id: string, channelId: string, author: FakeUser, content: string) {
    return {
      id,
      channel_id: channelId,
      author: this.userPayload(author),
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

  private botMessage(channelId: string, body: Record<string, unknown>, id = this.snowflake()) {
    return {
      ...this.messagePayload(
        id,
        channelId,
        this.botUser,
        typeof body.content === "string" ? body.content : "",
      ),
      type: body.message_reference ? 19 : 0,
      flags: typeof body.flags === "number" ? body.flags : 0,
      ...(body.message_reference ? { message_reference: body.message_reference } : {}),
    };
  }
}

/** A role as Discord sends it in a guild or in an option's resolved data. */
function rolePayload(id: string, name: string, permissions: string, position: number) {
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

function auditLogReasonOf(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  return value === undefined ? undefined : decodeURIComponent(value);
}

function parseBody(raw: Buffer, contentType: string | undefined): unknown {
  if (raw.length === 0) return undefined;
  const text = raw.toString("utf8");
  if (contentType?.includes("application/json")) return JSON.parse(text);
  if (contentType?.includes("multipart/form-data")) {
    // discord.js puts the JSON part under payload_json; files are recorded by name, and their text by name.
    const json = text.match(/name="payload_json"[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n([\s\S]*?)\r\n--/);
    const parts = [
      ...text.matchAll(/name="files\[(\d+)\]"; filename="([^"]+)"\r\n(?:[^\r\n]+\r\n)*\r\n([\s\S]*?)\r\n--/g),
    ];
    const files = [...text.matchAll(/name="files\[(\d+)\]"; filename="([^"]+)"/g)].map((m) => m[2]);
    const fileTexts = Object.fromEntries(parts.map((m) => [m[2], m[3]]));
    return { ...(json?.[1] ? (JSON.parse(json[1]) as object) : {}), files, fileTexts };
  }
  return text;
}
