import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServerHttp } from "../../src/llm/server/http.js";
import { LlamaCppBackend } from "../../src/llm/server/llamaCpp.js";
import { ServerRequestError } from "../../src/platform/errors.js";

/*
 * The HTTP client under the llama.cpp backend, against a loopback server that records what it is sent and answers
 * what a test needs: what a real llama-server does not do on demand (split events, a dropped pooled connection,
 * unreadable answers). test/llm/llamaCppBackend.test.ts covers the real server.
 */

const API_KEY = "test-key-0123456789";

function client(url: string) {
  return new ServerHttp({ url, apiKey: API_KEY, maxSockets: 6, timeoutMs: 10_000, streamIdleMs: 10_000 });
}

const signal = () => AbortSignal.timeout(20_000);

async function serverError(promise: Promise<unknown>): Promise<ServerRequestError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ServerRequestError);
    return error as ServerRequestError;
  }
  throw new Error("expected a rejection");
}

describe("the server HTTP client, against a recording server", () => {
  let server: Server;
  let url: string;
  const seen: Array<{ path: string; headers: IncomingHttpHeaders }> = [];
  let answer: (response: ServerResponse) => void = (response) => response.end();

  beforeAll(async () => {
    server = createServer((request, response) => {
      seen.push({ path: request.url ?? "", headers: request.headers });
      request.resume();
      request.on("end", () => answer(response));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    // Behind a proxy under a path, written with "/v1" as OpenAI clients expect.
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/llama/v1`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const reply = (backend: LlamaCppBackend, onText: (piece: string) => void = () => undefined) =>
    backend.complete({
      prompt: { kind: "text", text: "hi" },
      maxTokens: 8,
      temperature: 0.7,
      signal: signal(),
      onText,
      conversationId: "guild-1:channel-2",
    });

  it("sends the key as a bearer token and the conversation id, and reads events split anywhere", async () => {
    const final = {
      content: "",
      stop: true,
      stop_type: "eos",
      tokens_predicted: 2,
      timings: { prompt_n: 5 },
    };
    const body = `: ping\r\n\r\ndata: {"content":"hé","stop":false}\r\n\r\ndata: {"content":"llo","stop":false}\n\ndata: ${JSON.stringify(final)}\n\n`;
    answer = (response) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      // Byte by byte: events, lines and a two-byte character are all cut apart.
      const bytes = Buffer.from(body);
      for (let index = 0; index < bytes.length; index++) response.write(bytes.subarray(index, index + 1));
      response.end();
    };
    const backend = new LlamaCppBackend(client(url));
    const pieces: string[] = [];
    const result = await reply(backend, (piece) => pieces.push(piece));
    backend.close();
    expect(pieces).toEqual(["hé", "llo"]);
    expect(result).toEqual({
      text: "héllo",
      stopReason: "eogToken",
      generatedTokens: 2,
      evaluatedPromptTokens: 5,
    });
    const request = seen.at(-1);
    expect(request?.path).toBe("/llama/completion");
    expect(request?.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(request?.headers["x-moodbot-conversation"]).toBe("guild-1:channel-2");
  });

  it("calls a stream that ends without its last event unreachable, and an error event http", async () => {
    const backend = new LlamaCppBackend(client(url));
    answer = (response) =>
      response
        .writeHead(200, { "content-type": "text/event-stream" })
        .end('data: {"content":"he","stop":false}\n\n');
    const pieces: string[] = [];
    expect((await serverError(reply(backend, (piece) => pieces.push(piece)))).problem).toBe("unreachable");
    expect(pieces).toEqual(["he"]);
    answer = (response) =>
      response
        .writeHead(200, { "content-type": "text/event-stream" })
        .end('data: {"error":{"code":500,"message":"slot crashed","type":"server_error"}}\n\n');
    const error = await serverError(reply(backend));
    expect(error.problem).toBe("http");
    expect(error.message).toContain("slot crashed");
    backend.close();
  });

  it("retries once on a new connection when a pooled one turns out closed", async () => {
    const backend = new LlamaCppBackend(client(url));
    const sockets = new Set<unknown>();
    let dropped = 0;
    answer = (response) => {
      const socket = response.req.socket;
      // The second request on a kept-alive connection finds it gone, as after a server's idle timeout.
      if (sockets.has(socket) && dropped++ === 0) {
        socket.destroy();
        return;
      }
      sockets.add(socket);
      response.writeHead(200, { "content-type": "application/json" }).end('{"tokens":[7]}');
    };
    expect(await backend.tokenizer.tokenize("a", false, signal())).toEqual([7]);
    expect(await backend.tokenizer.tokenize("a", false, signal())).toEqual([7]);
    expect(dropped).toBe(1);
    backend.close();
  });

  it("calls an answer it cannot read a protocol problem", async () => {
    const backend = new LlamaCppBackend(client(url));
    answer = (response) => response.writeHead(200, { "content-type": "text/html" }).end("<html>proxy</html>");
    expect((await serverError(backend.probe(signal()))).problem).toBe("protocol");
    expect((await serverError(reply(backend))).problem).toBe("protocol");
    answer = (response) =>
      response.writeHead(200, { "content-type": "application/json" }).end('{"total_slots":1}');
    expect((await serverError(backend.probe(signal()))).problem).toBe("protocol");
    backend.close();
  });
});
