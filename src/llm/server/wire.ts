import { ServerRequestError } from "../../platform/errors.js";

/*
 * What the vLLM, Ollama and OpenAI-compatible backends need from an HTTP client, and the small readers they share
 * for the untyped JSON that comes back. The transport (ServerHttp) owns the base URL, the key, the deadlines and
 * the mapping of failures to ServerRequestError; the backends here only build bodies and read answers, so each
 * builder and parser is a pure function tested on the servers' documented responses.
 */

export interface TransportRequestOptions {
  readonly signal: AbortSignal;
  /** Extra headers, such as the conversation id a load balancer hashes on. */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface TransportStreamOptions extends TransportRequestOptions {
  /** Called with each event's parsed JSON, in order; a throw ends the stream with that error. */
  readonly onEvent: (event: unknown) => void;
}

/**
 * The part of ServerHttp (http.ts) these backends use, so they are built and tested apart from it. Routes are
 * paths from the server's root, such as "/v1/models": the transport drops a trailing /v1 from the URL.
 */
export interface JsonTransport {
  getJson(route: string, options: TransportRequestOptions): Promise<unknown>;
  postJson(route: string, body: unknown, options: TransportRequestOptions): Promise<unknown>;
  /**
   * Posts and reads a stream of JSON events until the server ends it: Server-Sent Events (vLLM, OpenAI), or one
   * JSON object per line when the answer is application/x-ndjson (Ollama's /api/generate). Rejects
   * (ServerRequestError) when it breaks, stalls or is aborted.
   */
  postStream(route: string, body: unknown, options: TransportStreamOptions): Promise<void>;
  close(): void;
}

/** The header a load balancer in front of several servers can hash on, so a conversation keeps its prefix. */
export const CONVERSATION_HEADER = "x-moodbot-conversation";

export const conversationHeaders = (
  conversationId: string | undefined,
): Readonly<Record<string, string>> | undefined =>
  conversationId === undefined ? undefined : { [CONVERSATION_HEADER]: conversationId };

/** An answer the bot cannot read: never includes the body, which may hold members' text. */
export const protocolError = (route: string, what: string): ServerRequestError =>
  new ServerRequestError("protocol", route, `${route} answered without ${what}`);

export type JsonObject = Readonly<Record<string, unknown>>;

export const isObject = (value: unknown): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value);

export function objectAt(value: unknown, route: string, what: string): JsonObject {
  if (!isObject(value)) throw protocolError(route, what);
  return value;
}

export const numberOrUndefined = (value: unknown): number | undefined =>
  typeof value === "number" && Number.isFinite(value) ? value : undefined;

export const stringOrUndefined = (value: unknown): string | undefined =>
  typeof value === "string" ? value : undefined;

export const arrayOrUndefined = (value: unknown): readonly unknown[] | undefined =>
  Array.isArray(value) ? value : undefined;

/** The first choice of an OpenAI-shaped answer (vLLM's completions, OpenAI's chat completions). */
export function firstChoice(body: unknown, route: string): JsonObject {
  const choice = arrayOrUndefined(objectAt(body, route, "a JSON object").choices)?.[0];
  if (!isObject(choice)) throw protocolError(route, "a choice");
  return choice;
}

/** One candidate of a top-k list: its token text and log-probability. */
export interface TokenLogprob {
  readonly token: string;
  readonly logprob: number;
}

/** Reads `[{token, logprob}, …]` (OpenAI's chat logprobs, Ollama's), skipping malformed entries. */
export function tokenLogprobs(value: unknown): TokenLogprob[] {
  const entries: TokenLogprob[] = [];
  for (const entry of arrayOrUndefined(value) ?? []) {
    if (!isObject(entry)) continue;
    const token = stringOrUndefined(entry.token);
    const logprob = numberOrUndefined(entry.logprob);
    if (token !== undefined && logprob !== undefined) entries.push({ token, logprob });
  }
  return entries;
}

/** OpenAI-style APIs write -9999 for "not in the top 20"; that is no reading, not a probability. */
const NOT_RETURNED = -9999;

const logSumExp = (values: readonly number[]): number => {
  const max = Math.max(...values);
  return max + Math.log(values.reduce((sum, value) => sum + Math.exp(value - max), 0));
};

/**
 * Matches vote tokens to a top-k list by their text, for servers that return strings, not ids. Surrounding
 * whitespace is ignored (" positive" and "positive" are different tokens of one spelling, and their probabilities
 * add up); case is not, because the vote tokens already list each spelling the classifier pools ("positive",
 * "Positive"), and folding case here would count a candidate twice. A vote token absent from the list is
 * undefined: a top-k list says nothing about what it left out.
 */
export function matchVoteTokensByText(
  candidates: readonly TokenLogprob[],
  voteTexts: readonly string[],
): (number | undefined)[] {
  const byText = new Map<string, number[]>();
  for (const candidate of candidates) {
    const text = candidate.token.trim();
    if (text === "" || candidate.logprob <= NOT_RETURNED) continue;
    const found = byText.get(text);
    if (found) found.push(candidate.logprob);
    else byText.set(text, [candidate.logprob]);
  }
  const claimed = new Set<string>();
  return voteTexts.map((text) => {
    const key = text.trim();
    const found = byText.get(key);
    // Two vote tokens of one trimmed spelling would count the same candidates twice: the first one takes them.
    if (!found || claimed.has(key)) return undefined;
    claimed.add(key);
    return logSumExp(found);
  });
}

/** Prompt tokens the server evaluated: all of them, less those it says came from its prefix cache. */
export function evaluatedFromUsage(usage: unknown): number | undefined {
  if (!isObject(usage)) return undefined;
  const prompt = numberOrUndefined(usage.prompt_tokens);
  if (prompt === undefined) return undefined;
  const details = usage.prompt_tokens_details;
  const cached = isObject(details) ? (numberOrUndefined(details.cached_tokens) ?? 0) : 0;
  return Math.max(0, prompt - cached);
}

/**
 * The model to use among those a server lists: LLM_SERVER_MODEL when set (it must be listed), else the only one.
 * `sameModel` lets a kind accept its own aliases (Ollama's "qwen3" for "qwen3:latest").
 */
export function pickServedModel(
  served: readonly string[],
  wanted: string | undefined,
  route: string,
  sameModel: (listed: string, wanted: string) => boolean = (listed, name) => listed === name,
): string {
  const shown = served.slice(0, 10).join(", ") || "nothing";
  if (wanted !== undefined) {
    const found = served.find((listed) => sameModel(listed, wanted));
    if (found !== undefined) return found;
    throw new ServerRequestError(
      "unsupported",
      route,
      `${route} does not list LLM_SERVER_MODEL "${wanted}"; it serves ${shown}`,
    );
  }
  const [only, ...others] = served;
  if (only !== undefined && others.length === 0) return only;
  throw new ServerRequestError(
    "unsupported",
    route,
    only === undefined
      ? `${route} lists no model; load one on the server`
      : `${route} lists ${served.length} models (${shown}); set LLM_SERVER_MODEL to the one the bot should use`,
  );
}

/** The refusal when a server gives no probabilities: one paragraph, for the log and /readyz. */
export const noProbabilities = (route: string, fix: string): ServerRequestError =>
  new ServerRequestError(
    "unsupported",
    route,
    `${route} returned no token probabilities, and classification needs them: reactions, moderation and the ` +
      `neutral threshold all rest on a confidence, which a bare answer does not give. ${fix}`,
  );

/** A stream's error event (vLLM and OpenAI send `{"error": …}` as an event once the stream has begun). */
export function streamErrorEvent(event: JsonObject, route: string): ServerRequestError | undefined {
  if (event.error === undefined) return undefined;
  // The server's message is left out: validation errors may quote the prompt, which holds members' text.
  const error = event.error;
  const kind = isObject(error) ? (stringOrUndefined(error.type) ?? stringOrUndefined(error.code)) : undefined;
  return new ServerRequestError(
    "http",
    route,
    `${route} reported an error mid-stream${kind === undefined ? "" : ` (${kind})`}`,
  );
}

/** A served model from /v1/models: its id and, on vLLM, its context length. */
export interface ServedModel {
  readonly id: string;
  readonly contextSize: number | undefined;
}

/** Reads an OpenAI-style model list. vLLM writes `max_model_len`; other servers name it otherwise. */
export function parseModelList(body: unknown, route: string): ServedModel[] {
  const data = arrayOrUndefined(objectAt(body, route, "a model list").data);
  if (data === undefined) throw protocolError(route, "a model list");
  const models: ServedModel[] = [];
  for (const entry of data) {
    if (!isObject(entry)) continue;
    const id = stringOrUndefined(entry.id);
    if (id === undefined) continue;
    const contextSize =
      numberOrUndefined(entry.max_model_len) ??
      numberOrUndefined(entry.context_length) ??
      numberOrUndefined(entry.context_window) ??
      numberOrUndefined(entry.loaded_context_length) ??
      numberOrUndefined(entry.max_context_length);
    models.push({ id, contextSize });
  }
  return models;
}
