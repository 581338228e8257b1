/** The shapes the loopback Discord's parts share, and the ones tests import through testkit/fakeDiscord.ts. */

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

/** Returns a response to override the default one, or undefined to let the request through. */
export type RequestOverride = (request: RecordedRequest) => FakeResponse | undefined;

/**
 * The knobs a test turns on the fake (`discord.rejectResumes = true`): they live on FakeDiscord itself, and each
 * part reads them from there when a request or a gateway message comes in, so a change applies at once.
 */
export interface FakeDiscordSettings {
  /** When true, a RESUME gets Invalid Session (op 9, not resumable), as Discord answers for an expired session. */
  rejectResumes: boolean;
  /** The close code IDENTIFY gets instead of READY: 4004 for a bad token, 4014 for disallowed intents. */
  closeOnIdentify: number | undefined;
  /** While set, READY waits for this promise: a gateway that is slow to let the bot in. */
  readyGate: Promise<void> | undefined;
  /** How long after INTERACTION_CREATE the first response may come (Discord: 3 s). */
  interactionDeadlineMs: number;
  /** How long an interaction token works for follow-ups and edits (Discord: 15 minutes). */
  interactionTokenLifetimeMs: number;
  /** Reactions each channel may add per window, as Discord buckets the reaction route. */
  reactionLimit: { perWindow: number; windowMs: number };
  /** 429s answered on the reaction route. */
  rateLimited: number;
  /** What GET /gateway/bot recommends. */
  recommendedShards: number;
}
