import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { ServerErrors, tlsHint } from "./httpErrors.js";
import { EventStreamParser, JsonLinesParser } from "./streamParsers.js";

/*
 * The one HTTP client of the server runtime: a bounded keep-alive pool (40 requests on 40 new connections once took
 * 15.7 s against llama-server, the server idle in the gaps), a deadline on every request, and failures mapped to
 * ServerRequestError's problems. https uses Node's CA store, which already holds NODE_EXTRA_CA_CERTS.
 */

export interface ServerHttpOptions {
  /** The server's address as configured: with or without a trailing "/" or "/v1". */
  readonly url: string;
  /** Sent as `Authorization: Bearer …`; never put in an error message. */
  readonly apiKey: string | undefined;
  /** Connections open at most; requests beyond it wait in the pool (under their deadline). */
  readonly maxSockets: number;
  /** Each request's deadline, unless the call gives its own. */
  readonly timeoutMs: number;
  /** The longest silence in a stream, unless the call gives its own. */
  readonly streamIdleMs: number;
}

export interface JsonRequestOptions {
  readonly signal: AbortSignal;
  readonly timeoutMs?: number;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface StreamRequestOptions extends JsonRequestOptions {
  /** `timeoutMs` bounds the wait for the answer's head (the prompt's evaluation); this, each silence after it. */
  readonly idleMs?: number;
  /** Each `data:` event, parsed. A throw ends the stream with that error. */
  readonly onEvent: (event: unknown) => void;
}

/** A `server` address split into what requests need: no trailing slash, no "/v1", no credentials in `display`. */
export interface ServerAddress {
  readonly protocol: "http:" | "https:";
  readonly hostname: string;
  readonly port: number | undefined;
  /** A path the server sits under behind a proxy ("" when at the root); routes are appended to it. */
  readonly prefix: string;
  readonly auth: string | undefined;
  /** For messages: origin and prefix, without any credentials. */
  readonly display: string;
}

export function parseServerAddress(raw: string): ServerAddress {
  const url = new URL(raw);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`a model server's URL must start with http:// or https://, not ${url.protocol}`);
  }
  // "/v1" is where the OpenAI-compatible routes live; routes are given from the server's root, "/v1/…" included.
  const prefix = url.pathname.replace(/\/+$/, "").replace(/\/v1$/, "");
  const auth = url.username
    ? `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`
    : undefined;
  return {
    protocol: url.protocol,
    hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: url.port ? Number(url.port) : undefined,
    prefix,
    auth,
    display: `${url.protocol}//${url.host}${prefix}`,
  };
}

/** An answer's body is bounded: /props with a long chat template is tens of kilobytes. */
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const NETWORK_CODES_ON_A_STALE_SOCKET = new Set(["ECONNRESET", "EPIPE"]);

type Method = "GET" | "POST";

interface Exchange<T> {
  readonly method: Method;
  readonly route: string;
  readonly payload: unknown;
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly accept: string;
  /** Reads a 2xx answer; `restartTimer` replaces the deadline (a stream's idle timer). */
  readonly read: (response: IncomingMessage, control: ExchangeControl<T>) => void;
}

interface ExchangeControl<T> {
  succeed(value: T): void;
  fail(error: unknown): void;
  restartTimer(ms: number, why: string): void;
}

export class ServerHttp {
  readonly address: ServerAddress;
  private readonly agent: HttpAgent;
  private readonly errors: ServerErrors;
  private closed = false;

  constructor(private readonly options: ServerHttpOptions) {
    this.address = parseServerAddress(options.url);
    this.errors = new ServerErrors(this.address.display, options.apiKey);
    const poolOptions = {
      keepAlive: true,
      maxSockets: options.maxSockets,
      maxFreeSockets: options.maxSockets,
    };
    this.agent =
      this.address.protocol === "https:" ? new HttpsAgent(poolOptions) : new HttpAgent(poolOptions);
  }

  /** The bound learned later (llama-server's total_slots), plus the same headroom the caller gave at first. */
  setMaxSockets(maxSockets: number): void {
    this.agent.maxSockets = maxSockets;
    this.agent.maxFreeSockets = maxSockets;
  }

  getJson(route: string, options: JsonRequestOptions): Promise<unknown> {
    return this.json("GET", route, undefined, options);
  }

  postJson(route: string, body: unknown, options: JsonRequestOptions): Promise<unknown> {
    return this.json("POST", route, body, options);
  }

  /** Posts and reads Server-Sent Events until the server ends the answer. Aborting closes the connection. */
  postStream(route: string, body: unknown, options: StreamRequestOptions): Promise<void> {
    const idleMs = options.idleMs ?? this.options.streamIdleMs;
    const label = `POST ${route}`;
    return this.exchange<void>({
      method: "POST",
      route,
      payload: body,
      signal: options.signal,
      timeoutMs: options.timeoutMs ?? this.options.timeoutMs,
      headers: options.headers ?? {},
      accept: "text/event-stream, application/x-ndjson",
      read: (response, control) => {
        const type = response.headers["content-type"] ?? "";
        // Ollama's /api/generate streams one JSON object per line instead of Server-Sent Events.
        const jsonLines = /^application\/(x-)?ndjson/.test(type);
        if (!type.startsWith("text/event-stream") && !jsonLines) {
          response.resume();
          control.fail(
            this.errors.make("protocol", label, `answered ${type || "no content type"}, not an event stream`),
          );
          return;
        }
        const idle = `sent nothing for ${idleMs} ms (LLM_SERVER_STREAM_IDLE_MS)`;
        control.restartTimer(idleMs, idle);
        const events = new (jsonLines ? JsonLinesParser : EventStreamParser)((data) => {
          if (data === "[DONE]") return;
          let event: unknown;
          try {
            event = JSON.parse(data);
          } catch (error) {
            throw this.errors.make("protocol", label, "sent an event that is not JSON", undefined, error);
          }
          options.onEvent(event);
        });
        response.on("data", (chunk: Buffer) => {
          control.restartTimer(idleMs, idle);
          try {
            events.push(chunk);
          } catch (error) {
            control.fail(error);
            return;
          }
          if (events.bufferedLength > MAX_BODY_BYTES) {
            control.fail(this.errors.make("protocol", label, "sent an event stream line over 32 MiB"));
          }
        });
        response.on("end", () => {
          try {
            events.end();
            control.succeed(undefined);
          } catch (error) {
            control.fail(error);
          }
        });
      },
    });
  }

  /** Closes every pooled connection; later requests fail as unreachable. */
  close(): void {
    this.closed = true;
    this.agent.destroy();
  }

  private json(
    method: Method,
    route: string,
    payload: unknown,
    options: JsonRequestOptions,
  ): Promise<unknown> {
    const label = `${method} ${route}`;
    return this.exchange<unknown>({
      method,
      route,
      payload,
      signal: options.signal,
      timeoutMs: options.timeoutMs ?? this.options.timeoutMs,
      headers: options.headers ?? {},
      accept: "application/json",
      read: (response, control) =>
        readBody(response, (text) => {
          try {
            control.succeed(JSON.parse(text));
          } catch (error) {
            control.fail(
              this.errors.make("protocol", label, "answered with a body that is not JSON", undefined, error),
            );
          }
        }),
    });
  }

  private exchange<T>(exchange: Exchange<T>): Promise<T> {
    const { signal } = exchange;
    const label = `${exchange.method} ${exchange.route}`;
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.closed)
      return Promise.reject(this.errors.make("unreachable", label, "was asked after the client closed"));
    const body = exchange.payload === undefined ? undefined : Buffer.from(JSON.stringify(exchange.payload));
    const headers: Record<string, string> = { accept: exchange.accept, ...exchange.headers };
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    if (body) {
      headers["content-type"] = "application/json";
      headers["content-length"] = String(body.length);
    }
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      let destroyRequest = () => {};
      const settle = () => {
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
      };
      const control: ExchangeControl<T> = {
        succeed: (value) => {
          if (settled) return;
          settle();
          resolve(value);
        },
        fail: (error) => {
          if (settled) return;
          settle();
          // A destroyed request closes its socket, so a server stops generating for it.
          destroyRequest();
          reject(error);
        },
        restartTimer: (ms, why) => {
          clearTimeout(timer);
          timer = setTimeout(() => control.fail(this.errors.make("timeout", label, why)), ms);
        },
      };
      const onAbort = () => control.fail(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      control.restartTimer(exchange.timeoutMs, `did not answer within ${exchange.timeoutMs} ms`);

      // A pooled socket the server closed while idle fails at once: that one attempt is retried on a new socket.
      const attempt = (retriesLeft: number) => {
        const send = this.address.protocol === "https:" ? httpsRequest : httpRequest;
        const request = send({
          protocol: this.address.protocol,
          hostname: this.address.hostname,
          port: this.address.port,
          path: `${this.address.prefix}${exchange.route}`,
          method: exchange.method,
          headers,
          agent: this.agent,
          ...(this.address.auth === undefined ? {} : { auth: this.address.auth }),
        });
        destroyRequest = () => request.destroy();
        let answered = false;
        request.on("error", (error: NodeJS.ErrnoException) => {
          if (settled) return;
          const stale =
            !answered && request.reusedSocket && NETWORK_CODES_ON_A_STALE_SOCKET.has(error.code ?? "");
          if (stale && retriesLeft > 0) {
            attempt(retriesLeft - 1);
            return;
          }
          control.fail(
            this.errors.make(
              "unreachable",
              label,
              `failed: ${this.errors.redact(error.message)}${tlsHint(error.code)}`,
              undefined,
              error,
            ),
          );
        });
        request.on("response", (response) => {
          answered = true;
          response.on("error", (error) =>
            control.fail(
              this.errors.make("unreachable", label, "lost the connection mid-answer", undefined, error),
            ),
          );
          response.on("close", () => {
            if (!response.complete) {
              control.fail(this.errors.make("unreachable", label, "lost the connection mid-answer"));
            }
          });
          const status = response.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            exchange.read(response, control);
          } else {
            readBody(response, (text) => control.fail(this.errors.status(label, status, response, text)));
          }
        });
        request.end(body);
      };
      attempt(1);
    });
  }
}

/** Reads a whole body, bounded; `done` gets it as text. An oversized body is cut off (and fails to parse). */
function readBody(response: IncomingMessage, done: (text: string) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  response.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  });
  response.on("end", () => done(size > MAX_BODY_BYTES ? "" : Buffer.concat(chunks).toString("utf8")));
}
