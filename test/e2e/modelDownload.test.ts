import { once } from "node:events";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
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

async function firstStart(uri: string, stdin: string) {
  const modelsDir = await mkdtemp(join(tmpdir(), "moodbot-models-"));
  const dataDir = await mkdtemp(join(tmpdir(), "moodbot-data-"));
  const run = await runEntryPoint(
    "src/console.ts",
    {
      MODEL_URI: uri,
      MODELS_DIR: modelsDir,
      MODEL_DOWNLOAD_TIMEOUT_S: "1",
      STORE_URL: `sqlite://${join(dataDir, "bot.sqlite")}`,
      LLM_THREADS: "1",
      LLM_GPU: "off",
      CHAT_MAX_TOKENS: "4",
    },
    { stdin },
  );
  const exit = await run.exited;
  return { run, exit, files: await readdir(modelsDir) };
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
    const uri = await hub((req, res) => {
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
      res.writeHead(range ? 206 : 200, { ...headers, ...partial, "content-length": body.length }).end(body);
    });
    const { run, exit, files } = await firstStart(uri, "hello\n");
    expect(exit.code, run.stderr()).toBe(0);
    expect(run.stdout()).toMatch(/^moodbot: .*lorem/m);
    expect(files).toContain("model.gguf");
  });
});
