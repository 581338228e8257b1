import { once } from "node:events";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  request,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { TLSSocket } from "node:tls";

/*
 * A reverse proxy on 127.0.0.1 in front of a real model server (llama-server): every request goes through
 * unchanged and every answer streams back as it comes (a reply's events are not held back), while each request's
 * method, path and JSON body are kept. So a test reads what the bot really put on the wire, not what it meant to.
 * With `tls`, it listens as https with the given certificate: the bot then talks TLS to it, and the proxy records
 * which requests arrived over TLS and which clients failed the handshake.
 */

export interface ProxiedRequest {
  readonly method: string;
  readonly path: string;
  /** The JSON body as sent; undefined for a request without one. */
  readonly body: Record<string, unknown> | undefined;
  /** The TLS version the request arrived over ("TLSv1.3"); undefined for plain http. */
  readonly tls: string | undefined;
}

export interface RecordingProxyOptions {
  /** Where requests go: llama-server's http:// address. */
  readonly target: string;
  /** PEM key and certificate: listen as https instead of http. */
  readonly tls?: { readonly key: string; readonly cert: string };
}

export interface RecordingProxy {
  /** http://127.0.0.1:port, or https:// with `tls`. */
  readonly url: string;
  readonly requests: readonly ProxiedRequest[];
  /** Messages of the TLS handshakes that failed (a client that did not trust the certificate). */
  readonly handshakeFailures: readonly string[];
  /** Each POST /completion with a body so far, in order: its `prompt` is token ids or text. */
  completions(): Array<ProxiedRequest & { readonly body: Record<string, unknown> }>;
  /** Resolves once `count` requests match (those already seen count); fails after `timeoutMs` naming what came. */
  waitFor(
    match: (request: ProxiedRequest) => boolean,
    count?: number,
    timeoutMs?: number,
  ): Promise<ProxiedRequest[]>;
  /** Resolves once `count` handshakes have failed; fails after `timeoutMs`. */
  waitForHandshakeFailures(count?: number, timeoutMs?: number): Promise<string[]>;
  close(): Promise<void>;
}

/** Starts the proxy on 127.0.0.1 and a port the system picks. Close it in afterAll. */
export async function startRecordingProxy(options: RecordingProxyOptions): Promise<RecordingProxy> {
  const requests: ProxiedRequest[] = [];
  const handshakeFailures: string[] = [];
  // Woken on every event the waits are about: a wait resolves on the event itself, never on a timer.
  const listeners = new Set<() => void>();
  const wake = () => {
    for (const listener of listeners) listener();
  };
  const handler = (incoming: IncomingMessage, outgoing: ServerResponse) =>
    forward(options.target, incoming, outgoing, (recorded) => {
      requests.push(recorded);
      wake();
    });
  const server = options.tls ? createHttpsServer(options.tls, handler) : createHttpServer(handler);
  server.on("tlsClientError", (error: Error) => {
    handshakeFailures.push(error.message);
    wake();
  });
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;

  const waitOn = <T>(ready: () => T | undefined, timeoutMs: number, what: () => string): Promise<T> => {
    const now = ready();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise<T>((resolve, reject) => {
      const check = () => {
        const value = ready();
        if (value === undefined) return;
        listeners.delete(check);
        clearTimeout(timer);
        resolve(value);
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(what()));
      }, timeoutMs);
      listeners.add(check);
    });
  };

  return {
    url: `${options.tls ? "https" : "http"}://127.0.0.1:${port}`,
    requests,
    handshakeFailures,
    completions: () =>
      requests.filter(
        (entry): entry is ProxiedRequest & { body: Record<string, unknown> } =>
          entry.method === "POST" && entry.path === "/completion" && entry.body !== undefined,
      ),
    waitFor: (match, count = 1, timeoutMs = 20_000) =>
      waitOn(
        () => {
          const matched = requests.filter(match);
          return matched.length >= count ? matched : undefined;
        },
        timeoutMs,
        () =>
          `the proxy saw ${requests.filter(match).length} of ${count} matching requests in ${timeoutMs} ms; all: ` +
          requests.map((entry) => `${entry.method} ${entry.path}`).join(", "),
      ),
    waitForHandshakeFailures: (count = 1, timeoutMs = 20_000) =>
      waitOn(
        () => (handshakeFailures.length >= count ? [...handshakeFailures] : undefined),
        timeoutMs,
        () =>
          `${handshakeFailures.length} of ${count} TLS handshakes failed in ${timeoutMs} ms; requests: ${requests.length}`,
      ),
    close: async () => {
      // The bot's keep-alive pool holds connections open: they are cut, or close() would wait for them.
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Reads the whole request (bodies are small JSON), records it, then sends it on and streams the answer back. */
function forward(
  target: string,
  incoming: IncomingMessage,
  outgoing: ServerResponse,
  record: (request: ProxiedRequest) => void,
): void {
  const chunks: Buffer[] = [];
  incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
  incoming.on("end", () => {
    const body = Buffer.concat(chunks);
    const socket = incoming.socket;
    record({
      method: incoming.method ?? "",
      path: incoming.url ?? "",
      body: body.length > 0 ? (JSON.parse(body.toString("utf8")) as Record<string, unknown>) : undefined,
      tls: socket instanceof TLSSocket ? (socket.getProtocol() ?? "unknown") : undefined,
    });
    const upstream = request(
      `${target}${incoming.url ?? ""}`,
      { method: incoming.method, headers: { ...incoming.headers, host: new URL(target).host } },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        // pipe() writes each chunk as it arrives: a streamed reply reaches the bot event by event.
        answer.pipe(outgoing);
      },
    );
    // The bot sees a dropped connection, as it would if the server itself went away.
    upstream.on("error", () => outgoing.destroy());
    // A bot that hangs up (an aborted reply) stops the server's generation too.
    outgoing.on("close", () => {
      if (!outgoing.writableFinished) upstream.destroy();
    });
    upstream.end(body);
  });
}
