import type { DiscordState } from "./state.js";
import type { FakeDiscordSettings, FakeResponse, RecordedRequest } from "./types.js";

/** What Discord refuses before a route does anything: bad message bodies, rate limits, late or repeated responses. */
export class RestChecks {
  private readonly reactionBuckets = new Map<string, { remaining: number; resetAt: number }>();
  /** Rate-limit headers a request that passed its bucket check answers with. */
  private readonly pendingHeaders = new Map<RecordedRequest, Record<string, string>>();

  constructor(
    private readonly state: DiscordState,
    private readonly settings: FakeDiscordSettings,
  ) {}

  /** Discord's refusal of the request, or undefined to let it through to its route. */
  check(request: RecordedRequest): FakeResponse | undefined {
    return checkMessageBody(request) ?? this.checkReactionBucket(request) ?? this.checkInteraction(request);
  }

  /** The bucket headers a request that passed its check answers with (once), or undefined for a generic route. */
  takeHeaders(request: RecordedRequest): Record<string, string> | undefined {
    const headers = this.pendingHeaders.get(request);
    this.pendingHeaders.delete(request);
    return headers;
  }

  /** Reactions are bucketed per channel; a request before the bucket resets gets a 429 with retry_after. */
  private checkReactionBucket(request: RecordedRequest): FakeResponse | undefined {
    const match =
      request.method === "PUT" && request.path.match(/^\/channels\/(\d+)\/messages\/\d+\/reactions\//);
    if (!match) return undefined;
    const now = Date.now();
    const key = match[1] ?? "";
    const limit = this.settings.reactionLimit;
    let bucket = this.reactionBuckets.get(key);
    if (!bucket || now >= bucket.resetAt) {
      bucket = { remaining: limit.perWindow, resetAt: now + limit.windowMs };
      this.reactionBuckets.set(key, bucket);
    }
    const resetAfter = Math.max(0, bucket.resetAt - now) / 1000;
    const headers = {
      "x-ratelimit-limit": String(limit.perWindow),
      "x-ratelimit-reset": String(bucket.resetAt / 1000),
      "x-ratelimit-reset-after": resetAfter.toFixed(3),
      "x-ratelimit-bucket": `reactions-${key}`,
    };
    if (bucket.remaining <= 0) {
      this.settings.rateLimited += 1;
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
    const interaction = this.state.interactions.get(token);
    const age = interaction === undefined ? Number.POSITIVE_INFINITY : Date.now() - interaction.createdAt;
    if (callback) {
      if (!interaction || age > this.settings.interactionDeadlineMs) {
        return { status: 404, body: { message: "Unknown interaction", code: 10062 } };
      }
      if (interaction.acknowledged) {
        return { status: 400, body: { message: "Interaction has already been acknowledged.", code: 40060 } };
      }
      interaction.acknowledged = true;
      return undefined;
    }
    if (age > this.settings.interactionTokenLifetimeMs) {
      return { status: 401, body: { message: "Invalid Webhook Token", code: 50027 } };
    }
    return undefined;
  }
}

/** Over 2000 characters: 50035. Nothing to show at all: 50006. For every route that creates or edits a message. */
function checkMessageBody(request: RecordedRequest): FakeResponse | undefined {
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
