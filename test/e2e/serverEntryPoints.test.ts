import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, type RunningProcess, runEntryPoint } from "../../testkit/botProcess.js";
import { FakeDiscord, type FakeGuild } from "../../testkit/fakeDiscord.js";
import { testEnv } from "../../testkit/harness.js";
import { type LlamaServer, startLlamaServer } from "../../testkit/llamaServer.js";
import { tinyModel } from "../../testkit/models.js";
import { freeConsecutivePorts, freePort } from "../../testkit/ports.js";
import { type Scrape, scrape } from "../../testkit/prometheus.js";
import { sharedRedis } from "../../testkit/redis.js";

/*
 * The entry points in server mode (LLM_SERVER_URL) against a real llama-server: `npm run console` answers through
 * it, `npm run model -- verify` checks it (and says clearly when it cannot be used), and `npm run start:sharded`
 * starts children that hold no model. MODEL_PATH names a file that does not exist throughout: a process that tried
 * to load a model in-process would stop on it.
 */

const NO_MODEL_FILE = join(tmpdir(), "moodbot-server-mode-no-such-model.gguf");
const WATCH_IMPORTS = pathToFileURL(join(REPO_ROOT, "testkit", "watchImports.mjs")).href;
const noStackTrace = (text: string) => expect(text).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
/** A shard child that holds no model is a small Node.js process: about 160 MB here, tsx's compiler included. */
const CHILD_RSS_LIMIT_BYTES = 250 * 1024 * 1024;

/** A guild whose events Discord sends to `shard` of `count`: (guild_id >> 22) % count === shard. */
function guildOnShard(shard: number, count: number, name: string): FakeGuild {
  const base = 200_000_000_000n;
  const id = ((base * BigInt(count) + BigInt(shard)) << 22n) + 11n;
  const channel = (((base + 50n) * BigInt(count) + BigInt(shard)) << 22n) + 13n;
  return { id: id.toString(), name, channelIds: [channel.toString(), (channel + 1n).toString()] };
}

let server: LlamaServer;
let modelPath: string;

beforeAll(async () => {
  // The model favours "negative" over every other token: the label the console and the shards answer with.
  modelPath = await tinyModel({ favouredToken: "negative" });
  server = await startLlamaServer({ modelPath, contextSize: 4096, extraArgs: ["--metrics"] });
}, 90_000);
afterAll(async () => server?.stop());

/** What llama-server has done so far, from its own /metrics: work the bot sent it shows up here. */
async function serverWork(): Promise<{ decodes: number; predicted: number }> {
  const metrics = await scrape(server.url);
  return {
    decodes: metrics.value("llamacpp:n_decode_total"),
    predicted: metrics.value("llamacpp:tokens_predicted_total"),
  };
}

/** The packages the watched processes resolved (testkit/watchImports.mjs), once each. */
async function packagesLoaded(importLog: string): Promise<string[]> {
  return [...new Set((await readFile(importLog, "utf8")).split("\n").filter(Boolean))];
}

describe("npm run console with LLM_SERVER_URL", () => {
  it("answers a line through the server, loading neither a model file, node-llama-cpp nor discord.js", async () => {
    const dir = await mkdtemp(join(tmpdir(), "moodbot-server-console-"));
    const importLog = join(dir, "imports.log");
    const before = await serverWork();
    const run = await runEntryPoint(
      "src/console.ts",
      {
        LLM_SERVER_URL: server.url,
        MODEL_PATH: NO_MODEL_FILE,
        STORE_URL: `sqlite://${join(dir, "bot.sqlite")}`,
        CHAT_MAX_TOKENS: "4",
        MOODBOT_IMPORT_LOG: importLog,
      },
      { stdin: "this is awful\n", preload: WATCH_IMPORTS },
    );
    const exit = await run.exited;
    expect(exit.code, run.stderr()).toBe(0);
    // The mood came from the served model (it favours "negative"), and so did the reply.
    expect(run.stdout()).toMatch(/^😢 negative \(\d+%\)$/m);
    expect(run.stdout()).toMatch(/^moodbot: \S/m);
    const after = await serverWork();
    expect(after.decodes).toBeGreaterThan(before.decodes);
    expect(after.predicted).toBeGreaterThan(before.predicted);
    // MODEL_PATH was set, and ignored: the config says so once, and nothing tried to read the file.
    expect(run.stderr()).toContain("ignored: MODEL_PATH");
    expect(run.stderr()).not.toMatch(/cannot be read|model loaded/);
    // The in-process runtime's library never loads: no model could have been loaded in this process.
    const loaded = await packagesLoaded(importLog);
    expect(loaded).toContain("zod");
    expect(loaded).not.toContain("node-llama-cpp");
    // Nor Discord's library: the console runs the assembly, which never loads the Discord layer.
    expect(loaded.filter((name) => /discord\.js|@discordjs/.test(name))).toEqual([]);
  }, 60_000);
});

describe("npm run model -- verify with LLM_SERVER_URL", () => {
  const verify = (env: Record<string, string>) =>
    runEntryPoint("src/modelCli.ts", { MODEL_PATH: NO_MODEL_FILE, ...env }, { args: ["verify"] });

  it("checks a good llama-server: its kind, its model, its label tokens and its probabilities", async () => {
    const before = await serverWork();
    const run = await verify({ LLM_SERVER_URL: server.url });
    expect((await run.exited).code, run.stdout() + run.stderr()).toBe(0);
    const out = run.stdout();
    expect(out).toMatch(
      new RegExp(
        `^The llama\\.cpp server serves ${basename(modelPath).replace(/\./g, "\\.")} \\(\\d+ tokens per conversation\\) and classified a message as negative \\(logits, confidence [01]\\.\\d\\d\\)\\.$`,
        "m",
      ),
    );
    // Each label's token ids, as the server's tokenizer gave them.
    expect(out).toMatch(
      /^Label tokens: positive \d+ "positive"[^;]*; negative \d+ "negative"[^;]*; neutral \d+ "neutral"/m,
    );
    const probabilities = out.match(
      /^Probabilities: positive ([01]\.\d+), negative ([01]\.\d+), neutral ([01]\.\d+)\.$/m,
    );
    expect(probabilities, out).not.toBeNull();
    const [positive, negative, neutral] = (probabilities ?? []).slice(1).map(Number);
    expect((positive ?? 0) + (negative ?? 0) + (neutral ?? 0)).toBeCloseTo(1, 2);
    expect(negative).toBeGreaterThan(Math.max(positive ?? 1, neutral ?? 1));
    expect((await serverWork()).decodes).toBeGreaterThan(before.decodes);
    expect(run.stderr()).not.toMatch(/cannot be read|moodbot cannot start/);
  }, 60_000);

  it("exits 1 with one clear line against a wrong key, and against nothing listening", async () => {
    const rightKey = "the-right-key-c41d";
    const keyed = await startLlamaServer({ modelPath, apiKey: rightKey });
    try {
      const nothing = `http://127.0.0.1:${await freePort()}`;
      // Both wait out verify's bounded wait for the server to become usable, side by side.
      const [wrongKey, unreachable] = await Promise.all([
        verify({ LLM_SERVER_URL: keyed.url, LLM_SERVER_API_KEY: "a-wrong-key-9e2b" }),
        verify({ LLM_SERVER_URL: nothing }),
      ]);
      const failures: Array<[RunningProcess, RegExp]> = [
        [wrongKey, /refused the key \(unauthorized\).*check LLM_SERVER_API_KEY/],
        [unreachable, /is unreachable/],
      ];
      for (const [run, reason] of failures) {
        expect((await run.exited).code).toBe(1);
        const lines = run.stdout().trim().split("\n");
        expect(lines, run.stdout()).toHaveLength(1);
        expect(lines[0]).toMatch(/^The model server cannot be used: /);
        expect(lines[0]).toMatch(reason);
        expect(lines[0]).not.toContain("a-wrong-key-9e2b");
        expect(run.stderr()).toBe("");
        noStackTrace(run.stdout());
      }
    } finally {
      await keyed.stop();
    }
  }, 90_000);
});

describe("npm run start:sharded with LLM_SERVER_URL", () => {
  let discord: FakeDiscord;
  let redis: Awaited<ReturnType<typeof sharedRedis>>;
  const guilds = [guildOnShard(0, 2, "Server A"), guildOnShard(1, 2, "Server B")];

  beforeAll(async () => {
    discord = await new FakeDiscord({ guilds }).start();
    redis = await sharedRedis();
  });
  afterAll(async () => {
    await discord?.stop();
    await redis?.release();
  });

  it("starts two children that hold no model, each reacting in its own guild through the server", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "moodbot-server-sharded-"));
    const metricsPort = await freeConsecutivePorts();
    const importLog = join(dataDir, "imports.log");
    const manager = await runEntryPoint("src/sharded.ts", {
      ...testEnv(discord, NO_MODEL_FILE, dataDir),
      LLM_SERVER_URL: server.url,
      STORE_URL: redis.url,
      SHARD_COUNT: "2",
      METRICS_PORT: String(metricsPort),
      // Through NODE_OPTIONS the import watch reaches the shard children too: they all write to one log.
      NODE_OPTIONS: `--import ${WATCH_IMPORTS}`,
      MOODBOT_IMPORT_LOG: importLog,
    });
    try {
      await manager.whileRunning(discord.waitForReadies(2, 90_000), "READY for both shard processes");
      for (const [shardId, guild] of guilds.entries()) {
        const id = discord.sendMessage({
          content: `so disappointed with shard ${shardId} ${Date.now()}`,
          guildId: guild.id,
          channelId: guild.channelIds[0] ?? "",
        });
        const reacted = await manager.whileRunning(
          manager.outcomes.next("reacted", { messageId: id }, 30_000),
          `the reaction in ${guild.name}`,
        );
        expect(reacted).toMatchObject({ shardId, label: "negative" });
        expect(discord.acceptedMatching("PUT", new RegExp(`/messages/${id}/reactions/`))).toHaveLength(1);
      }
      const ports = [metricsPort, metricsPort + 1];
      const scrapes = await Promise.all(ports.map((port) => scrape(`http://127.0.0.1:${port}`)));
      for (const [index, metrics] of scrapes.entries()) assertNoModelHeld(metrics, index);
      // Each child (its own pid) learned the server; none found, let alone loaded, a model file.
      const logs = manager.logs();
      const serverReady = logs.filter((line) => line.msg === "model server ready");
      expect(new Set(serverReady.map((line) => line.pid)).size).toBe(2);
      for (const line of serverReady) expect(line).toMatchObject({ kind: "llama.cpp", method: "logits" });
      expect(logs.filter((line) => /^(model loaded|finding the model)/.test(String(line.msg)))).toEqual([]);
      const loaded = await packagesLoaded(importLog);
      // prom-client and @keyv/redis are the children's own (the manager opens neither metrics nor the store).
      expect(loaded).toEqual(expect.arrayContaining(["discord.js", "prom-client", "@keyv/redis"]));
      expect(loaded).not.toContain("node-llama-cpp");
      manager.child.kill("SIGTERM");
      expect((await manager.exited).code).toBe(0);
    } finally {
      if (manager.child.exitCode === null) {
        manager.child.kill("SIGKILL");
        await manager.exited;
      }
    }
  }, 180_000);
});

/** One child's metrics: its model runs on llama-server and is up, it reacted once, and it stays small. */
function assertNoModelHeld(metrics: Scrape, index: number): void {
  expect(metrics.labelsOf("moodbot_model_info"), `child ${index}`).toEqual([
    expect.objectContaining({ runtime: "llama.cpp", method: "logits", backend: "server", threads: "" }),
  ]);
  expect(metrics.value("moodbot_model_up"), `child ${index}`).toBe(1);
  expect(metrics.value("moodbot_messages_reacted_total"), `child ${index}`).toBe(1);
  const rss = metrics.value("process_resident_memory_bytes");
  expect(rss, `child ${index}`).toBeGreaterThan(0);
  expect(rss, `child ${index}'s resident memory`).toBeLessThan(CHILD_RSS_LIMIT_BYTES);
}
