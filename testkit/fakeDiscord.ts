import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type AttachFileOptions, FakeCdn } from "./fakeDiscord/cdn.js";
import { Gateway } from "./fakeDiscord/gateway.js";
import {
  type ButtonClickOptions,
  InteractionEvents,
  type MessageCommandOptions,
  type SentInteraction,
  type SlashCommandOptions,
  type UserCommandOptions,
} from "./fakeDiscord/interactionEvents.js";
import { MessageEvents, type SendMessageOptions } from "./fakeDiscord/messageEvents.js";
import { HELPER_ROLE_ID, shardOf } from "./fakeDiscord/payloads.js";
import { type FinalMessage, RequestLog } from "./fakeDiscord/requestLog.js";
import { RestApi } from "./fakeDiscord/restApi.js";
import { RestChecks } from "./fakeDiscord/restChecks.js";
import { DiscordState } from "./fakeDiscord/state.js";
import type {
  FakeDiscordSettings,
  FakeGuild,
  FakeUser,
  RecordedRequest,
  RequestOverride,
} from "./fakeDiscord/types.js";
import { waitUntil } from "./waitUntil.js";

export { ALICE } from "./fakeDiscord/payloads.js";
export type {
  FakeGuild,
  FakeResponse,
  FakeUser,
  InteractionContext,
  RecordedRequest,
  RequestOverride,
} from "./fakeDiscord/types.js";

/**
 * A loopback Discord: the REST API and the gateway on 127.0.0.1, enough of both for discord.js 14 to log in,
 * receive guilds, messages and interactions, and answer them. Every REST request is recorded, so tests assert
 * on what the bot actually sent over HTTP.
 *
 * This class is the face tests use; the parts live in testkit/fakeDiscord/: the shared state, the gateway, the
 * REST checks and routes, the CDN, and the gateway events a test sends. The knobs below are read by those parts
 * on each request, so a test may turn them at any time (their meaning is on FakeDiscordSettings).
 */
export class FakeDiscord implements FakeDiscordSettings {
  /** A role every fake guild has, with no permissions: for tests of role-based access. */
  static readonly HELPER_ROLE_ID = HELPER_ROLE_ID;

  /** Discord's formula for which shard receives a guild's events. */
  static shardOf(guildId: string, shardCount: number): number {
    return shardOf(guildId, shardCount);
  }

  rejectResumes = false;
  closeOnIdentify: number | undefined;
  readyGate: Promise<void> | undefined;
  interactionDeadlineMs = 3_000;
  interactionTokenLifetimeMs = 15 * 60_000;
  reactionLimit = { perWindow: 1, windowMs: 250 };
  rateLimited = 0;
  recommendedShards = 1;

  private readonly state: DiscordState;
  private readonly log = new RequestLog();
  private readonly gateway: Gateway;
  private readonly cdn: FakeCdn;
  private readonly messageEvents: MessageEvents;
  private readonly interactionEvents: InteractionEvents;
  private readonly rest: RestApi;
  private server: Server | undefined;
  private port = 0;

  readonly requests: RecordedRequest[] = this.log.requests;
  readonly botUser: FakeUser;
  readonly applicationId: string;
  readonly guilds: FakeGuild[];
  /** The default guild's thread, under its first channel. */
  readonly threadId: string;
  /** Members whose highest role is above the bot's: Discord refuses to time them out (50013). */
  readonly membersAboveBot: Set<string>;
  /** IDENTIFY payloads received. */
  readonly identifies: Gateway["identifies"];
  /** Every READY the gateway sent, one per session started: a bot process is ready once its READY is here. */
  readonly readies: Gateway["readies"];
  /** RESUME payloads received: a dropped session that discord.js resumed instead of re-identifying. */
  readonly resumes: Gateway["resumes"];
  /** The CDN paths a client downloaded, in order. */
  readonly fileDownloads: FakeCdn["fileDownloads"];

  constructor(options: { guilds?: FakeGuild[]; denyInSecondChannel?: bigint; channels?: number } = {}) {
    const state = new DiscordState(options);
    this.state = state;
    this.gateway = new Gateway(state, this, () => this.gatewayUrl);
    this.cdn = new FakeCdn(state, () => `http://127.0.0.1:${this.port}`);
    this.messageEvents = new MessageEvents(state, this.gateway);
    this.interactionEvents = new InteractionEvents(state, this.gateway);
    const context = {
      state,
      settings: this,
      messageEvents: this.messageEvents,
      gatewayUrl: () => this.gatewayUrl,
    };
    this.rest = new RestApi(this.log, new RestChecks(state, this), this.cdn, context);
    // The state's and the parts' own collections, so that what a test reads or changes here is what they use.
    this.botUser = state.botUser;
    this.applicationId = state.applicationId;
    this.guilds = state.guilds;
    this.threadId = state.threadId;
    this.membersAboveBot = state.membersAboveBot;
    this.identifies = this.gateway.identifies;
    this.readies = this.gateway.readies;
    this.resumes = this.gateway.resumes;
    this.fileDownloads = this.cdn.fileDownloads;
  }

  /** The REST base to hand to discord.js as `rest.api` (DISCORD_API_URL). */
  get apiUrl(): string {
    return `http://127.0.0.1:${this.port}/api`;
  }

  get gatewayUrl(): string {
    return `ws://127.0.0.1:${this.port}/gateway`;
  }

  /** The first guild's second channel: where a test may deny the bot permissions. */
  get secondChannelId(): string {
    return this.state.secondChannelId;
  }

  /** The first guild's first channel: where most tests talk. */
  get channelId(): string {
    return this.state.channelId;
  }

  get guildId(): string {
    return this.state.guildId;
  }

  get connectedSockets(): number {
    return this.gateway.connectedSockets;
  }

  snowflake(): string {
    return this.state.snowflake();
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      this.rest.handle(req, res).catch((error: unknown) => {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ message: String(error), code: 0 }));
      });
    });
    this.gateway.listen(this.server);
    this.server.listen(0, "127.0.0.1");
    await once(this.server, "listening");
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    this.gateway.stop();
    if (this.server) {
      this.server.closeAllConnections();
      await new Promise<void>((resolve) => this.server?.close(() => resolve()));
    }
  }

  /**
   * Puts a file on the fake CDN (this server's /attachments/…, on 127.0.0.1) and returns the attachment object a
   * message carries, as Discord's gateway sends it. `status` and `location` make the download fail or redirect.
   */
  attachFile(name: string, body: string | Buffer, options: AttachFileOptions = {}): Record<string, unknown> {
    return this.cdn.attachFile(name, body, options);
  }

  // -------------------------------------------------------------------------------------------------------------
  // What the bot sent (see RequestLog)

  /** Adds a response override; the first override that answers wins. Returns a function that removes it. */
  override(override: RequestOverride): () => void {
    return this.log.override(override);
  }

  /** Every request about one channel: reactions, messages, typing. */
  requestsTo(channelId: string): RecordedRequest[] {
    return this.log.requestsTo(channelId);
  }

  /** What the bot's messages in a channel finally say: each posted message with its last edit applied, in order. */
  finalMessages(channelId?: string): FinalMessage[] {
    return this.log.finalMessages(channelId);
  }

  /** The id Discord gave the message a POST created, once it answered; undefined for any other request. */
  postedMessageId(request: RecordedRequest): string | undefined {
    return this.log.postedMessageId(request);
  }

  requestsMatching(method: string, pathPattern: RegExp): RecordedRequest[] {
    return this.log.requestsMatching(method, pathPattern);
  }

  /** The matching requests that Discord accepted (2xx): a 429 that discord.js retried counts once. */
  acceptedMatching(method: string, pathPattern: RegExp): RecordedRequest[] {
    return this.log.acceptedMatching(method, pathPattern);
  }

  /** Waits, for at most `timeoutMs`, until `count` requests match; returns them. */
  waitForRequests(
    method: string,
    pathPattern: RegExp,
    count = 1,
    timeoutMs = 20_000,
  ): Promise<RecordedRequest[]> {
    return this.log.waitForRequests(method, pathPattern, count, timeoutMs);
  }

  /** Waits, for at most `timeoutMs`, until `count` READY events were sent in all; returns them. */
  async waitForReadies(count: number, timeoutMs = 60_000): Promise<FakeDiscord["readies"]> {
    await waitUntil(() => this.readies.length >= count, {
      timeoutMs,
      failure: () => `only ${this.readies.length} of ${count} gateway sessions got READY in ${timeoutMs} ms`,
    });
    return this.readies;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Gateway events (see MessageEvents, InteractionEvents and Gateway)

  /** Sends MESSAGE_CREATE for a user's message and returns the message's id. */
  sendMessage(options: SendMessageOptions): string {
    return this.messageEvents.sendMessage(options);
  }

  /** Sends INTERACTION_CREATE for a slash command; returns the interaction's id and token. */
  sendSlashCommand(options: SlashCommandOptions): SentInteraction {
    return this.interactionEvents.sendSlashCommand(options);
  }

  /** Sends INTERACTION_CREATE for a message context-menu command (right-click a message → Apps). */
  sendMessageCommand(options: MessageCommandOptions): SentInteraction {
    return this.interactionEvents.sendMessageCommand(options);
  }

  /** Sends INTERACTION_CREATE for a click on a button under one of the bot's messages. */
  sendButtonClick(options: ButtonClickOptions): SentInteraction {
    return this.interactionEvents.sendButtonClick(options);
  }

  /** Sends INTERACTION_CREATE for a user context-menu command (right-click a member → Apps). */
  sendUserCommand(options: UserCommandOptions): SentInteraction {
    return this.interactionEvents.sendUserCommand(options);
  }

  /** A member deleted a message: MESSAGE_DELETE, with only the ids, as Discord sends it. */
  deleteMessage(messageId: string, channelId = this.channelId): void {
    this.messageEvents.deleteMessage(messageId, channelId);
  }

  /** A moderator purged messages at once: MESSAGE_DELETE_BULK. */
  bulkDeleteMessages(messageIds: readonly string[], channelId = this.channelId): void {
    this.messageEvents.bulkDeleteMessages(messageIds, channelId);
  }

  /** GUILD_DELETE: removed from the server, or (with `outage`) the server is in an outage and its data must stay. */
  removeGuild(guildId = this.guildId, options: { outage?: boolean } = {}): void {
    this.messageEvents.removeGuild(guildId, options);
  }

  /** Sends an event to every session that wants it; a disconnected session keeps it for its RESUME. */
  dispatch(type: string, data: unknown): void {
    this.gateway.dispatch(type, data);
  }

  /** Asks every connection to reconnect and resume (opcode 7), as Discord does before moving a session. */
  requestReconnect(): void {
    this.gateway.requestReconnect();
  }

  /** Closes every gateway connection with a close code, as Discord does when it drops a session. */
  closeGateway(code: number): void {
    this.gateway.closeGateway(code);
  }
}
