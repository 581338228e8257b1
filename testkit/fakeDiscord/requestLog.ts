import { waitUntil } from "../waitUntil.js";
import type { FakeResponse, RecordedRequest, RequestOverride } from "./types.js";

/** One message the bot posted, as it finally reads. */
export interface FinalMessage {
  id: string;
  content: string;
  reference: unknown;
}

/**
 * Every REST request the fake received, in order, with the status it answered and the id of each message it
 * created: what tests assert on. Also the overrides a test installs to answer requests its own way.
 */
export class RequestLog {
  readonly requests: RecordedRequest[] = [];
  /** The id the fake gave each message the bot posted, by the request that posted it. */
  private readonly postedIds = new Map<RecordedRequest, string>();
  private readonly overrides: RequestOverride[] = [];

  /** Adds a response override; the first override that answers wins. Returns a function that removes it. */
  override(override: RequestOverride): () => void {
    this.overrides.push(override);
    return () => {
      const index = this.overrides.indexOf(override);
      if (index >= 0) this.overrides.splice(index, 1);
    };
  }

  /** Records a request as it arrives; returns the response an override gives it, if one does. */
  receive(request: RecordedRequest): FakeResponse | undefined {
    this.requests.push(request);
    for (const override of this.overrides) {
      const response = override(request);
      if (response) return response;
    }
    return undefined;
  }

  /** Records the answer: its status, and for a POST that created something, the id Discord gave it. */
  answered(request: RecordedRequest, response: FakeResponse): void {
    request.status = response.status;
    const postedId = (response.body as { id?: unknown } | undefined)?.id;
    if (request.method === "POST" && typeof postedId === "string") this.postedIds.set(request, postedId);
  }

  /** Every request about one channel: reactions, messages, typing. */
  requestsTo(channelId: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path.startsWith(`/channels/${channelId}/`));
  }

  /**
   * What the bot's messages in a channel finally say: each posted message with its last edit applied, in order.
   * The fake gives each posted message an id; edits are matched to it by that id.
   */
  finalMessages(channelId?: string): FinalMessage[] {
    const messages: FinalMessage[] = [];
    for (const request of this.requests) {
      const body = (request.body ?? {}) as { content?: string; message_reference?: unknown };
      const posted = request.path.match(/^\/channels\/(\d+)\/messages$/);
      if (request.method === "POST" && posted && (channelId === undefined || posted[1] === channelId)) {
        const id = this.postedIds.get(request) ?? "";
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
    return this.postedIds.get(request);
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

  /** Waits, for at most `timeoutMs`, until `count` requests match; returns them. */
  async waitForRequests(method: string, pathPattern: RegExp, count: number, timeoutMs: number) {
    await waitUntil(() => this.requestsMatching(method, pathPattern).length >= count, {
      timeoutMs,
      failure: () => {
        const seen = this.requests.map((r) => `${r.method} ${r.path}`).join("\n  ");
        return `timed out waiting for ${count}× ${method} ${pathPattern}; saw:\n  ${seen}`;
      },
    });
    return this.requestsMatching(method, pathPattern);
  }
}
