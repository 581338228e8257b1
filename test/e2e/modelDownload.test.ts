import { once } from "node:events";
import { copyFile, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runEntryPoint } from "../../testkit/botProcess.js";
import { tinyModel } from "../../testkit/models.js";

/*
 * First start with MODEL_URI and no MODEL_PATH, against a loopback "model hub": one that never answers, one that
 * stops sending midway, and one that serves the file. `npm run console` stands in for the bot: the same assembly,
 * no Discord needed.
 */

/** node-llama-cpp's downloader (ipull) keeps what arrived in whole chunks of this size. */
const CHUNK_BYTES = 5 * 1024 * 1024;

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  server?.close();
  server = undefined;
});

async function hub(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  server = createServer(handler);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return `http://127.0.0.1:${port}/model.gguf`;
}

/**
 * A hub that serves `model` with byte ranges, as Hugging Face does. `sendUpTo` sees where each request starts (a
 * request without a range starts at 0) and says up to which byte of the file it is sent; the rest stalls.
 */
function serving(model: Buffer, sendUpTo: (start: number, ranged: boolean) => number) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const range = req.headers.range?.match(/bytes=(\d+)-(\d*)/);
    const start = range ? Number(range[1]) : 0;
    const end = range?.[2] ? Number(range[2]) : model.length - 1;
    const headers = { "accept-ranges": "bytes", "content-type": "application/octet-stream" };
    if (req.method === "HEAD") {
      res.writeHead(200, { ...headers, "content-length": model.length }).end();
      return;
    }
    const body = model.subarray(start, end + 1);
    const partial = range ? { "content-range": `bytes ${start}-${end}/${model.length}` } : {};
    res.writeHead(range ? 206 : 200, { ...headers, ...partial, "content-length": body.length });
    const sent = Math.max(
      0,
      Math.min(body.length, sendUpTo(start, range !== null && range !== undefined) - start),
    );
    if (sent === body.length) res.end(body);
    else res.write(body.subarray(0, sent));
  };
}

async function firstStart(uri: string, stdin: string, modelsDir?: string) {
  const dir = modelsDir ?? (await mkdtemp(join(tmpdir(), "moodbot-models-")));
  const dataDir = await mkdtemp(join(tmpdir(), "moodbot-data-"));
  const run = await runEntryPoint(
    "src/console.ts",
    {
      MODEL_URI: uri,
      MODELS_DIR: dir,
      MODEL_DOWNLOAD_TIMEOUT_S: "1",
      STORE_URL: `sqlite://${join(dataDir, "bot.sqlite")}`,
      LLM_THREADS: "1",
      LLM_GPU: "off",
      CHAT_MAX_TOKENS: "4",
    },
    { stdin },
  );
  const exit = await run.exited;
  return { run, exit, files: await readdir(dir) };
}

describe("downloading the model on first start", () => {
  it("gives up on a hub that never answers, with one paragraph on fetching the file by hand", async () => {
    const uri = await hub(() => undefined);
    const { run, exit, files } = await firstStart(uri, "hello\n");
    expect(exit.code).toBe(1);
    const stderr = run.stderr();
    expect(stderr).toContain(`Could not download the model ${uri}`);
    expect(stderr).toContain("MODEL_DOWNLOAD_TIMEOUT_S");
    expect(stderr).toContain(`To fetch the file by hand, download ${uri}`);
    expect(stderr).toContain("set MODEL_PATH to the saved .gguf file");
    expect(stderr).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
    expect(files).not.toContain("model.gguf");
  });

  it("never loads a file the hub stopped sending midway", async () => {
    const model = await readFile(await tinyModel());
    const uri = await hub((_req, res) => {
      res.writeHead(200, { "content-length": model.length, "content-type": "application/octet-stream" });
      res.write(model.subarray(0, Math.floor(model.length / 2)));
    });
    const { run, exit, files } = await firstStart(uri, "hello\n");
    expect(exit.code).toBe(1);
    expect(run.stderr()).toContain("no progress for 1 s");
    expect(files).not.toContain("model.gguf");
  });

  it("downloads from a URL into MODELS_DIR, then answers", async () => {
    const model = await readFile(await tinyModel({ favouredToken: " lorem" }));
    const uri = await hub(serving(model, () => model.length));
    const { run, exit, files } = await firstStart(uri, "hello\n");
    expect(exit.code, run.stderr()).toBe(0);
    expect(run.stdout()).toMatch(/^moodbot: .*lorem/m);
    expect(files).toContain("model.gguf");
  });

  it("resumes an interrupted download on the next start, loading it only once whole", async () => {
    // Several chunks long.
    const model = await readFile(await tinyModel({ favouredToken: " lorem", vocabularySize: 40_000 }));
    let phase: "first start" | "second start" = "first start";
    const ranges: Array<{ phase: string; start: number }> = [];
    const uri = await hub(
      serving(model, (start, ranged) => {
        if (ranged) ranges.push({ phase, start });
        // The first start gets all but the end of the file, then nothing more.
        return phase === "second start" ? model.length : model.length - 200_000;
      }),
    );
    const modelsDir = await mkdtemp(join(tmpdir(), "moodbot-models-"));
    const first = await firstStart(uri, "hello\n", modelsDir);
    expect(first.exit.code).toBe(1);
    expect(first.run.stderr()).toContain("no progress for 1 s");
    expect(first.files).toEqual(["model.gguf.ipull"]);

    phase = "second start";
    const second = await firstStart(uri, "hello\n", modelsDir);
    expect(second.exit.code, second.run.stderr()).toBe(0);
    expect(second.run.stdout()).toMatch(/^moodbot: .*lorem/m);
    expect(second.files).toEqual(["model.gguf"]);
    // Buffer.equals, not toEqual: a deep comparison of 22 MB byte by byte would block the test for minutes.
    expect((await readFile(join(modelsDir, "model.gguf"))).equals(model)).toBe(true);
    // The second start asked only for what the first did not keep: the last of the 5 MB chunks.
    const lastChunk = Math.floor((model.length - 1) / CHUNK_BYTES) * CHUNK_BYTES;
    const resumed = ranges.filter((range) => range.phase === "second start").map((range) => range.start);
    expect(resumed.length).toBeGreaterThan(0);
    expect(Math.min(...resumed)).toBe(lastChunk);
  });
});

describe("npm run model", () => {
  const modelCommand = async (args: string[], env: Record<string, string>) => {
    const run = await runEntryPoint(
      "src/modelCli.ts",
      { LLM_THREADS: "1", LLM_GPU: "off", ...env },
      { args },
    );
    return { run, exit: await run.exited };
  };

  it("pull downloads a URL into MODELS_DIR with progress, and a second pull finds it there", async () => {
    const model = await readFile(await tinyModel());
    const uri = await hub(serving(model, () => model.length));
    const dir = await mkdtemp(join(tmpdir(), "moodbot-models-"));
    const first = await modelCommand(["pull", uri], { MODELS_DIR: dir, MODEL_DOWNLOAD_TIMEOUT_S: "5" });
    expect(first.exit.code).toBe(0);
    expect(first.run.stdout()).toMatch(/downloading .+: 100% of \d+ MB/);
    expect(first.run.stdout()).toContain(`model ready: ${join(dir, "model.gguf")}`);
    expect((await readFile(join(dir, "model.gguf"))).equals(model)).toBe(true);
    const again = await modelCommand(["pull", uri], { MODELS_DIR: dir });
    expect(again.exit.code).toBe(0);
    expect(again.run.stdout()).not.toContain("downloading");
  });

  it("pull gives up on a hub that never answers, with one paragraph", async () => {
    const uri = await hub(() => undefined);
    const dir = await mkdtemp(join(tmpdir(), "moodbot-models-"));
    const { run, exit } = await modelCommand(["pull", uri], {
      MODELS_DIR: dir,
      MODEL_DOWNLOAD_TIMEOUT_S: "1",
    });
    expect(exit.code).toBe(1);
    expect(run.stderr()).toContain(`Could not download the model ${uri}`);
    expect(run.stderr()).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  });

  it("list shows each file's size, quantisation, context and whether the labels take one pass", async () => {
    const dir = await mkdtemp(join(tmpdir(), "moodbot-models-"));
    await copyFile(await tinyModel(), join(dir, "a-distinct.gguf"));
    await copyFile(await tinyModel({ collidingLabels: true }), join(dir, "b-colliding.gguf"));
    const { run, exit } = await modelCommand(["list"], { MODELS_DIR: dir });
    expect(exit.code).toBe(0);
    const [header, distinct, colliding] = run.stdout().trim().split("\n");
    expect(header).toMatch(/^file\s+size\s+quantisation\s+parameters\s+context\s+sentiment labels$/);
    expect(distinct).toMatch(
      /^a-distinct\.gguf\s+\d+ MB\s+\S+\s+[\d.]+B\s+\d+\s+one pass \(unique first tokens\)$/,
    );
    expect(colliding).toMatch(/^b-colliding\.gguf\s.+constrained decoding \(shared first token\)$/);
  });

  it("verify loads a model and reads the labels in one pass, and fails plainly otherwise", async () => {
    const good = await modelCommand(["verify"], { MODEL_PATH: await tinyModel() });
    expect(good.exit.code).toBe(0);
    expect(good.run.stdout()).toMatch(
      /loads on cpu and classified a message as (positive|negative|neutral) \(logits/,
    );
    expect(good.run.stdout()).toContain("one forward pass per message");

    const colliding = await modelCommand(["verify", await tinyModel({ collidingLabels: true })], {});
    expect(colliding.exit.code).toBe(1);
    expect(colliding.run.stdout()).toContain("falls back to constrained decoding");

    const notGguf = join(await mkdtemp(join(tmpdir(), "moodbot-models-")), "notes.gguf");
    await writeFile(notGguf, "not a model");
    const broken = await modelCommand(["verify", notGguf], {});
    expect(broken.exit.code).toBe(1);
    expect(broken.run.stderr()).toContain("is not a GGUF file");
    expect(broken.run.stderr()).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);

    const unknown = await modelCommand(["fetch"], {});
    expect(unknown.exit.code).toBe(1);
    expect(unknown.run.stderr()).toContain("unknown command fetch");
    expect(unknown.run.stderr()).toContain("pull [uri]");
  });
});
