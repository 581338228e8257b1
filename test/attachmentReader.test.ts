import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AttachmentReader,
  type AttachmentRef,
  BYTES_PER_TOKEN_BOUND,
  cutMarker,
  joinFiles,
  type Layout,
  MIN_FILE_TOKENS,
  NOT_READ,
  readPrefix,
} from "../src/discord/attachmentReader.js";
import { loadModel } from "../src/llm/inProcess/model.js";
import type { Llm } from "../src/llm/llm.js";
import { createLogger } from "../src/platform/logger.js";
import type { ReadingBudget, TokenMeter } from "../src/text/inputBudget.js";
import { transcript } from "../src/transcript/transcript.js";
import { testModelOptions, tinyModel } from "../testkit/models.js";

/*
 * The attachment reader against a real HTTP server on 127.0.0.1 and the tiny model's real tokenizer: a message's
 * text and its files share one budget in tokens, a file is fetched only when some of it can be read and never more
 * than its room holds, a cut file says where it was cut and keeps its end marker. The tokenizer is reached through
 * promises, as it will be once counting moves off the main thread.
 */

let llm: Llm;
let server: Server;
/** The files the server holds, by path; `endless` streams forever. */
const files = new Map<string, string | "endless">();
/** How many times each path was requested. */
const requests = new Map<string, number>();
let fileCounter = 0;

beforeAll(async () => {
  llm = await loadModel(testModelOptions({ path: await tinyModel() }));
  server = createServer((request, response) => {
    const path = request.url ?? "";
    requests.set(path, (requests.get(path) ?? 0) + 1);
    const body = files.get(path);
    if (body === undefined) return void response.writeHead(404).end();
    response.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
    if (body !== "endless") return void response.end(body);
    // A file with no end: only a reader that stops at its cap ever finishes.
    const timer = setInterval(() => response.write("endless line of text\n".repeat(50)), 2);
    response.on("close", () => clearInterval(timer));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
});
afterAll(async () => {
  server?.closeAllConnections();
  server?.close();
  await llm?.close();
});

/** The model's tokenizer behind promises, as an asynchronous counter would be. */
function asyncMeter(): TokenMeter {
  return {
    countTokens: async (text) => llm.countTokens(text),
    truncateToTokens: async (text, maxTokens) => llm.truncateToTokens(text, maxTokens),
  };
}
const budgetOf = (tokens: number): ReadingBudget => ({ tokens, meter: asyncMeter() });

function serve(name: string, body: string | "endless"): AttachmentRef {
  const path = `/attachments/${++fileCounter}/${name}`;
  files.set(path, body);
  const size = body === "endless" ? 0 : Buffer.byteLength(body);
  return {
    name,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`,
    size,
    contentType: null,
  };
}
const fetched = (ref: AttachmentRef) => requests.get(new URL(ref.url).pathname) ?? 0;

function reader(options: { maxBytes?: number } = {}) {
  return new AttachmentReader(
    { hosts: new Set(["127.0.0.1"]), timeoutMs: 5000, ...options },
    createLogger({ level: "silent" }),
  );
}
const oneMessage: Layout = (messages) => messages.map(joinFiles).join("\n");

/** Letters with no merges in the tiny vocabulary: one token a byte, so sizes in a test are sizes in tokens. */
function letters(length: number, seed = 1): string {
  let state = seed;
  let text = "";
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    text += i % 9 === 8 ? "\n" : String.fromCharCode(97 + (state % 26));
  }
  return text;
}

/** The part of the input between a file's opening line and its cut marker. */
function shownStart(input: string, name: string): string {
  const start = input.indexOf(`[attached file ${name}]\n`) + `[attached file ${name}]\n`.length;
  return input.slice(start, input.indexOf("\n[file cut here: ", start));
}

describe("a message's files share its budget", () => {
  it("reads the text first, then the files in order with the room left; one beyond it is named, never fetched", async () => {
    const a = letters(100, 1);
    const b = letters(2000, 2);
    const first = serve("a.txt", a);
    const second = serve("b.txt", b);
    // Larger than the place its name holds: it could only be read cut, and there is no room for that.
    const third = serve("c.txt", letters(300, 5));
    const budget = 500;
    const input = await reader().readWithin(
      [{ text: "here are the notes", files: [first, second, third] }],
      oneMessage,
      budgetOf(budget),
    );
    const opening = `here are the notes\n[attached file a.txt]\n${a}\n[end of a.txt]\n`;
    expect(input.slice(0, opening.length)).toBe(opening);
    // The second file fills the room that is left, up to its cut, and keeps its end marker.
    expect(input).toMatch(/\n\[file cut here: \d(\.\d)? of 2 KB read\]\n\[end of b\.txt\]\n/);
    const start = shownStart(input, "b.txt");
    expect(b.startsWith(start)).toBe(true);
    expect(input).toContain(`[attached file c.txt: not read, ${NOT_READ.noRoom}]`);
    const tokens = await llm.countTokens(input);
    expect(tokens).toBeLessThanOrEqual(budget);
    // Only the third file's place (held with the longest reason) and the joins are left unused.
    expect(tokens).toBeGreaterThan(budget - 12);
    expect([fetched(first), fetched(second), fetched(third)]).toEqual([1, 1, 0]);
  });

  it("downloads a file only up to what its room can hold", async () => {
    const endless = serve("endless.log", "endless");
    const input = await reader().readWithin([{ text: "look", files: [endless] }], oneMessage, budgetOf(200));
    // Not "the download failed": the reader stopped at its cap long before the 5 s timeout.
    expect(input).toMatch(/^look\n\[attached file endless\.log\]\nendless line of text\n/);
    // With no size given, the total is what arrived: the cap, a few kilobytes where 64 KB was allowed.
    const [, total] =
      input.match(/\n\[file cut here: [\d.]+ of ([\d.]+) KB read\]\n\[end of endless\.log\]$/) ?? [];
    expect(Number(total)).toBeGreaterThan(0);
    expect(Number(total) * 1024).toBeLessThanOrEqual(200 * BYTES_PER_TOKEN_BOUND);
    expect(await llm.countTokens(input)).toBeLessThanOrEqual(200);
  });

  it("reads a file cut inside a character as text, not as binary", async () => {
    const chinese = serve("zh.txt", "中文".repeat(2000));
    // 1000 bytes is not a whole number of three-byte characters.
    const input = await reader({ maxBytes: 1000 }).readWithin(
      [{ text: "", files: [chinese] }],
      oneMessage,
      budgetOf(4000),
    );
    expect(input).toMatch(
      /^\[attached file zh\.txt\]\n(中文)+中?\n\[file cut here: 1 of 12 KB read\]\n\[end of zh\.txt\]$/,
    );
  });

  it("cuts a text that overflows on its own, and still names every file without fetching it", async () => {
    const text = letters(3000, 3);
    const first = serve("one.txt", letters(300, 6));
    const second = serve("two.png", "two");
    const input = await reader().readWithin(
      [{ text, files: [first, { ...second, contentType: "image/png" }] }],
      oneMessage,
      budgetOf(200),
    );
    expect(text.startsWith(input.split("\n[attached file one.txt")[0] ?? "")).toBe(true);
    expect(input).toContain(`\n[attached file one.txt: not read, ${NOT_READ.noRoom}]`);
    expect(input.endsWith(`\n[attached file two.png: not read, ${NOT_READ.notText}]`)).toBe(true);
    expect(await llm.countTokens(input)).toBeLessThanOrEqual(200);
    expect(fetched(first) + fetched(second)).toBe(0);
  });

  it("shares one budget across a transcript's messages, texts before files", async () => {
    const big = letters(5000, 4);
    const first = serve("log.txt", big);
    const second = serve("later.txt", letters(300, 7));
    const lines: Layout = (read) =>
      transcript(read.map((message, index) => ({ author: `member${index}`, text: joinFiles(message) })));
    const input = await reader().readWithin(
      [
        { text: "first message", files: [first] },
        { text: "second message", files: [second] },
      ],
      lines,
      budgetOf(400),
    );
    expect(input.startsWith("member0: first message\n[attached file log.txt]\n")).toBe(true);
    expect(input).toContain("\n[end of log.txt]\nmember1: second message\n");
    expect(input.endsWith(`[attached file later.txt: not read, ${NOT_READ.noRoom}]`)).toBe(true);
    expect(await llm.countTokens(input)).toBeLessThanOrEqual(400);
    expect([fetched(first), fetched(second)]).toEqual([1, 0]);
  });

  it("keeps any mix of texts and files within the budget, every file named once and fetched only if read", async () => {
    const piece = fc.constantFrom(
      " the",
      " love",
      " message",
      "x",
      "y",
      " ",
      "\n",
      "中",
      "é",
      "<@123>",
      "[]",
    );
    const text = fc.array(piece, { maxLength: 400 }).map((parts) => parts.join(""));
    const file = fc.record({ body: text, binary: fc.boolean() });
    await fc.assert(
      fc.asyncProperty(
        text,
        fc.array(file, { maxLength: 4 }),
        fc.integer({ min: 300, max: 900 }),
        async (message, bodies, budget) => {
          const refs = bodies.map(({ body, binary }, index) =>
            serve(`f${index}.txt`, binary ? `${body}\u0000` : body),
          );
          const input = await reader().readWithin(
            [{ text: message, files: refs }],
            oneMessage,
            budgetOf(budget),
          );
          expect(await llm.countTokens(input)).toBeLessThanOrEqual(budget);
          for (const ref of refs) {
            const read = input.includes(`[attached file ${ref.name}]\n`);
            const named = input.includes(`[attached file ${ref.name}: not read, `);
            expect(read !== named).toBe(true);
            if (read) expect(input).toContain(`\n[end of ${ref.name}]`);
            // Binary files are fetched and then named; a text file is fetched only when some of it is read.
            if (!bodies[refs.indexOf(ref)]?.binary) expect(fetched(ref)).toBe(read ? 1 : 0);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it("fetches a file that may need cutting only when the cut leaves MIN_FILE_TOKENS of it", async () => {
    const ref = serve("tight.txt", letters(300, 8));
    const cutFrame = await llm.countTokens(
      `look\n[attached file tight.txt]\n\n${cutMarker(300, 300)}\n[end of tight.txt]`,
    );
    const tight = await reader().readWithin(
      [{ text: "look", files: [ref] }],
      oneMessage,
      budgetOf(cutFrame + MIN_FILE_TOKENS - 2),
    );
    expect(tight).toBe(`look\n[attached file tight.txt: not read, ${NOT_READ.noRoom}]`);
    expect(fetched(ref)).toBe(0);
    const roomy = await reader().readWithin(
      [{ text: "look", files: [ref] }],
      oneMessage,
      budgetOf(cutFrame + MIN_FILE_TOKENS + 2),
    );
    expect(roomy).toContain("\n[file cut here: ");
    expect(fetched(ref)).toBe(1);
  });

  it("reads a small file whole in a room too small for a cut one: a token is at least a byte", async () => {
    const ref = serve("ok.txt", "ok");
    // The room its name holds, with the longest reason, before the file is read.
    const budget = await llm.countTokens(`look\n[attached file ok.txt: not read, ${NOT_READ.status(503)}]`);
    const cut = await llm.countTokens(`look\n[attached file ok.txt]\n\n${cutMarker(2, 2)}\n[end of ok.txt]`);
    expect(cut + MIN_FILE_TOKENS).toBeGreaterThan(budget);
    const input = await reader().readWithin([{ text: "look", files: [ref] }], oneMessage, budgetOf(budget));
    expect(input).toBe("look\n[attached file ok.txt]\nok\n[end of ok.txt]");
  });
});

describe("readPrefix", () => {
  /** A body of `chunks` chunks of `size` bytes that counts what was pulled from it. */
  function countingResponse(chunks: number, size: number) {
    const pulled = { bytes: 0 };
    let left = chunks;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (left-- === 0) return controller.close();
        pulled.bytes += size;
        controller.enqueue(new Uint8Array(size).fill(97));
      },
    });
    return { response: new Response(body), pulled };
  }

  it("stops pulling once past the cap, and says the body went on", async () => {
    const { response, pulled } = countingResponse(1000, 1024);
    const prefix = await readPrefix(response, 4000);
    expect(prefix).toMatchObject({ complete: false });
    expect(prefix.bytes.length).toBe(4000);
    // At most the chunk that crossed the cap, and one the stream had queued ahead.
    expect(pulled.bytes).toBeLessThanOrEqual(4000 + 2 * 1024);
  });

  it("reads a body that ends within the cap whole", async () => {
    const { response } = countingResponse(3, 1024);
    const prefix = await readPrefix(response, 3 * 1024);
    expect(prefix).toMatchObject({ complete: true });
    expect(prefix.bytes.length).toBe(3 * 1024);
  });
});
