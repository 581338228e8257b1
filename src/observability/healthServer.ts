import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { ModelReadiness } from "../llm/llm.js";
import { errorMessage, MoodbotError } from "../platform/errors.js";
import type { Logger } from "../platform/logger.js";
import type { Metrics } from "./metrics.js";

/** Each part the bot needs, as /readyz reports it. */
export interface Readiness {
  /** Undefined while the model loads; then the model's own readiness (a server's can come and go). */
  readonly model: ModelReadiness | undefined;
  readonly gatewayConnected: boolean;
  /** Undefined until the store is open. */
  readonly store: { readonly reachable: boolean; readonly bufferedTurns: number } | undefined;
}

/** /readyz's body. The store is reported but never makes the bot unready: it serves from memory meanwhile. */
export interface ReadinessReport {
  readonly ready: boolean;
  /** `unavailable`: a model server that cannot be used now, for the reason in `modelCause`. */
  readonly model: "loaded" | "loading" | "unavailable";
  readonly modelCause?: string;
  readonly gateway: "connected" | "disconnected";
  readonly store: { readonly status: "up" | "down" | "opening"; readonly bufferedTurns: number };
}

export function readinessReport(readiness: Readiness): ReadinessReport {
  const { store, model } = readiness;
  return {
    ready: model?.ready === true && readiness.gatewayConnected,
    ...(model === undefined
      ? { model: "loading" }
      : model.ready
        ? { model: "loaded" }
        : { model: "unavailable", modelCause: model.cause }),
    gateway: readiness.gatewayConnected ? "connected" : "disconnected",
    store: {
      status: store === undefined ? "opening" : store.reachable ? "up" : "down",
      bufferedTurns: store?.bufferedTurns ?? 0,
    },
  };
}

export interface HealthServerOptions {
  readonly host: string;
  readonly port: number;
  readonly metrics: Metrics;
  /** Asked at every /readyz request. */
  readonly readiness: () => Readiness;
  readonly logger: Logger;
}

export interface HealthServer {
  /** The port it listens on (the one asked for, or the one the system chose for port 0). */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The supervisor's and Prometheus's view of the process: GET /healthz (alive), /readyz (serving: the model is
 * loaded and ready, a model server reachable and usable, and the gateway connected) and /metrics (the Prometheus text format). Nothing else is served.
 */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const { logger } = options;
  const server = createServer((request, response) => {
    respond(request, response, options).catch((error: unknown) => {
      logger.error({ err: error, path: request.url }, "health server request failed");
      if (!response.headersSent) response.writeHead(500, { "content-type": "text/plain" });
      response.end("internal error\n");
    });
  });
  // A scraper that never closes its connection must not keep the process alive on shutdown.
  server.keepAliveTimeout = 5_000;
  server.listen(options.port, options.host);
  try {
    await Promise.race([
      once(server, "listening"),
      once(server, "error").then(([error]) => Promise.reject(error)),
    ]);
  } catch (error) {
    throw new HealthServerError(options.host, options.port, errorMessage(error), { cause: error });
  }
  const port = (server.address() as AddressInfo).port;
  logger.info({ host: options.host, port }, "health and metrics server listening");
  return {
    port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function respond(request: IncomingMessage, response: ServerResponse, options: HealthServerOptions) {
  if (request.method !== "GET" && request.method !== "HEAD") {
    response.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" });
    response.end("method not allowed\n");
    return;
  }
  const path = new URL(request.url ?? "/", "http://localhost").pathname;
  switch (path) {
    case "/healthz":
      response.writeHead(200, { "content-type": "text/plain" });
      response.end("ok\n");
      return;
    case "/readyz": {
      const report = readinessReport(options.readiness());
      response.writeHead(report.ready ? 200 : 503, { "content-type": "application/json" });
      response.end(`${JSON.stringify(report)}\n`);
      return;
    }
    case "/metrics": {
      const text = await options.metrics.text();
      response.writeHead(200, { "content-type": options.metrics.contentType });
      response.end(text);
      return;
    }
    default:
      response.writeHead(404, { "content-type": "text/plain" });
      response.end("not found: try /healthz, /readyz or /metrics\n");
  }
}

/** The health server could not listen (the port is taken, the host is not this machine's). */
export class HealthServerError extends MoodbotError {
  override readonly name = "HealthServerError";
  constructor(
    readonly host: string,
    readonly port: number,
    problem: string,
    options?: ErrorOptions,
  ) {
    super(
      `The health and metrics server cannot listen on ${host}:${port} (${problem}). Set METRICS_PORT to a free port, or remove it to turn the server off.`,
      options,
    );
  }
}
