import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

/*
 * A loopback HTTP server that answers as a model server of a kind that cannot run here (vLLM, Ollama, an
 * OpenAI-compatible API), from the response fixtures in test/fixtures/servers: it keeps every request it was sent,
 * and can hold a streamed answer open until the test lets it end. It binds 127.0.0.1 only.
 */

export interface FakeRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Record<string, unknown>;
}

export type FakeAnswer =
  | { readonly json: unknown; readonly status?: number }
  /** Server-sent events, then `data: [DONE]`; with `holdUntil`, the first events go out and the rest wait for it. */
  | { readonly sse: readonly unknown[]; readonly holdUntil?: Promise<void> }
  | { readonly ndjson: readonly unknown[] };

export interface FakeModelServer {
  /** The server's address, ending in /v1 (the bot takes it with or without). */
  readonly url: string;
  readonly requests: readonly FakeRequest[];
  /** Ends held answers and open connections, and stops listening. */
  close(): Promise<void>;
}

/** A fixture of test/fixtures/servers: a JSON `response`, or the `events` of a stream. */
export function serverFixture(name: string): { readonly response?: unknown; readonly events?: unknown[] } {
  const path = join(import.meta.dirname, "..", "test", "fixtures", "servers", `${name}.json`);
  return JSON.parse(readFileSync(path, "utf8"));
}

export async function startFakeModelServer(
  answer: (request: FakeRequest) => FakeAnswer,
): Promise<FakeModelServer> {
  const requests: FakeRequest[] = [];
  const server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
    incoming.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const request: FakeRequest = {
        method: incoming.method ?? "",
        path: incoming.url ?? "",
        headers: incoming.headers,
        body: text ? JSON.parse(text) : {},
      };
      requests.push(request);
      const reply = answer(request);
      if ("sse" in reply) {
        outgoing.writeHead(200, { "content-type": "text/event-stream" });
        const sendAll = (events: readonly unknown[]) => {
          for (const event of events) outgoing.write(`data: ${JSON.stringify(event)}\n\n`);
        };
        if (!reply.holdUntil) {
          sendAll(reply.sse);
          outgoing.end("data: [DONE]\n\n");
          return;
        }
        // The stream has begun (the reply's first piece is out) and stays open until the test lets it end.
        sendAll(reply.sse.slice(0, 2));
        void reply.holdUntil.then(() => {
          sendAll(reply.sse.slice(2));
          outgoing.end("data: [DONE]\n\n");
        });
      } else if ("ndjson" in reply) {
        outgoing.writeHead(200, { "content-type": "application/x-ndjson" });
        outgoing.end(reply.ndjson.map((line) => `${JSON.stringify(line)}\n`).join(""));
      } else {
        outgoing.writeHead(reply.status ?? 200, { "content-type": "application/json" });
        outgoing.end(JSON.stringify(reply.json));
      }
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
