import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inProcessConfig, loadConfig, readEnvironment } from "../src/platform/config.js";
import { percent } from "../src/wording/wording.js";
import { REPO_ROOT, runEntryPoint } from "../testkit/botProcess.js";
import { FakeDiscord } from "../testkit/fakeDiscord.js";
import { freePort } from "../testkit/ports.js";
import { RedisServer } from "../testkit/redis.js";
import { ensureBenchModel } from "./benchModel.js";
import { BENCH_MESSAGES } from "./messages.js";
import { median, percentile, round } from "./stats.js";

/*
 * `npm run bench -- --overhead`: what a reaction costs beyond its forward pass, through the real bot process on the
 * bench model of the real Qwen2.5-0.5B shape, on SQLite and on Redis. From the gateway event the loopback Discord
 * sends to the reaction's PUT it receives, minus the time the model spent in passes meanwhile (the bot's own
 * moodbot_sentiment_pass_duration_seconds, scraped before and after):
 * - single messages, one at a time: each one's time outside the model, against its pass;
 * - a burst in one channel, all sent at once: the wall time to the last reaction minus the passes, against the
 *   passes. The arrival order serialises each channel's decisions, so this is where reads in series would show.
 * Written to bench/overhead.json and bench/overhead.md.
 */

const log = (line: string) => process.stderr.write(`${line}\n`);
/** Rounds of (singles, then a burst) per backend: the machine may be shared, so the figures are medians. */
const ROUNDS = 3;
const SINGLES = 12;
const BURST = 20;
const WARM_UP = 3;
/** The target: a reaction costs at most this share of its pass outside the model. */
export const OVERHEAD_TARGET = 0.1;
const PASS_SUM = /^moodbot_sentiment_pass_duration_seconds_sum(?:\{[^}]*\})? (\S+)$/m;
const PASS_COUNT = /^moodbot_sentiment_pass_duration_seconds_count(?:\{[^}]*\})? (\S+)$/m;

export interface OverheadFigures {
  readonly backend: "sqlite" | "redis";
  readonly singles: {
    readonly messages: number;
    readonly passP50Ms: number;
    readonly overheadP50Ms: number;
    readonly overheadP95Ms: number;
    /** The median over messages of (time outside the model ÷ its pass). */
    readonly ratioP50: number;
  };
  readonly burst: {
    readonly messages: number;
    readonly rounds: number;
    readonly wallMs: number;
    readonly passMs: number;
    /** Time outside the model per message of the burst. */
    readonly overheadPerMessageMs: number;
    /** The median over rounds of (wall − passes) ÷ passes. */
    readonly ratio: number;
  };
}

export interface OverheadCost {
  readonly threads: number;
  readonly date: string;
  readonly runs: readonly OverheadFigures[];
}

export async function benchOverhead(): Promise<void> {
  const config = inProcessConfig(loadConfig(readEnvironment(), "console"), "the overhead bench");
  const model = await ensureBenchModel(log);
  const runs: OverheadFigures[] = [];
  for (const backend of ["sqlite", "redis"] as const) {
    log(`what a reaction costs beyond its pass, on ${backend}…`);
    runs.push(await measure(backend, model.path, config.model.threads, config.model.gpu));
  }
  const cost: OverheadCost = {
    threads: config.model.threads,
    date: new Date().toISOString().slice(0, 10),
    runs,
  };
  const table = renderOverhead(cost);
  await writeFile(join(REPO_ROOT, "bench", "overhead.json"), `${JSON.stringify(cost, null, 2)}\n`);
  await writeFile(join(REPO_ROOT, "bench", "overhead.md"), table);
  process.stdout.write(table);
}

/** The sentiment passes' total time and count so far, from the bot's own metrics. */
async function passTotals(metricsUrl: string): Promise<{ ms: number; count: number }> {
  const text = await (await fetch(metricsUrl)).text();
  const sum = text.match(PASS_SUM)?.[1];
  const count = text.match(PASS_COUNT)?.[1];
  if (sum === undefined || count === undefined)
    throw new Error(`no sentiment pass histogram at ${metricsUrl}`);
  return { ms: Number(sum) * 1000, count: Number(count) };
}

async function measure(
  backend: "sqlite" | "redis",
  modelPath: string,
  threads: number,
  gpu: string,
): Promise<OverheadFigures> {
  const discord = await new FakeDiscord().start();
  // Discord lets a bot add about four reactions a second in one channel; that limit, not the bot, would be what a
  // one-channel burst measured. The loopback's bucket is opened so that the bot's own cost shows.
  discord.reactionLimit = { perWindow: 10_000, windowMs: 250 };
  const dataDir = await mkdtemp(join(tmpdir(), "moodbot-bench-overhead-"));
  const redis = backend === "redis" ? await RedisServer.start() : undefined;
  const metricsPort = await freePort();
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  try {
    const bot = await runEntryPoint("src/index.ts", {
      DISCORD_TOKEN: "bench-token",
      DISCORD_API_URL: discord.apiUrl,
      MODEL_PATH: modelPath,
      STORE_URL: redis ? redis.url : `sqlite://${join(dataDir, "bot.sqlite")}`,
      LLM_THREADS: String(threads),
      LLM_GPU: gpu,
      // Every message is new to the model: no result is answered from a cache.
      SENTIMENT_CACHE_SIZE: "0",
      // A burst on a busy machine must not be shed: every message's reaction is measured.
      SENTIMENT_MAX_WAIT_MS: "600000",
      SENTIMENT_QUEUE_SIZE: "1000",
      METRICS_PORT: String(metricsPort),
      LOG_LEVEL: "info",
    });
    try {
      await bot.whileRunning(discord.waitForReadies(1, 300_000), "the gateway's READY");
      const texts = BENCH_MESSAGES.filter((text) => text.trim().length > 3);
      let sent = 0;
      // Unique texts, so that neither this process's cache nor Redis's shared one answers a repeat.
      const nextText = () => `${texts[sent % texts.length]} (${sent++})`;
      const reactionTo = async (id: string) => {
        const path = new RegExp(`^/channels/${discord.channelId}/messages/${id}/reactions/`);
        const [put] = await discord.waitForRequests("PUT", path, 1, 600_000);
        if (!put) throw new Error(`no reaction to ${id}`);
        return put.at;
      };
      const single = async () => {
        const before = await passTotals(metricsUrl);
        const sentAt = Date.now();
        const id = discord.sendMessage({ content: nextText() });
        const reactedAt = await reactionTo(id);
        const after = await passTotals(metricsUrl);
        const passMs = after.ms - before.ms;
        return { passMs, overheadMs: reactedAt - sentAt - passMs };
      };
      for (let i = 0; i < WARM_UP; i++) await single();
      const singles: Array<{ passMs: number; overheadMs: number }> = [];
      const bursts: Array<{ wallMs: number; passMs: number }> = [];
      for (let round = 0; round < ROUNDS; round++) {
        log(`  round ${round + 1} of ${ROUNDS}: ${SINGLES} single messages, then a burst of ${BURST}…`);
        for (let i = 0; i < SINGLES; i++) singles.push(await single());
        const before = await passTotals(metricsUrl);
        const sentAt = Date.now();
        const ids = Array.from({ length: BURST }, () => discord.sendMessage({ content: nextText() }));
        const reactedAt = await Promise.all(ids.map(reactionTo));
        const after = await passTotals(metricsUrl);
        bursts.push({ wallMs: Math.max(...reactedAt) - sentAt, passMs: after.ms - before.ms });
      }
      const overheads = singles.map((one) => one.overheadMs);
      const ratios = bursts.map((one) => (one.wallMs - one.passMs) / one.passMs);
      const wallMs = median(bursts.map((one) => one.wallMs));
      const passMs = median(bursts.map((one) => one.passMs));
      return {
        backend,
        singles: {
          messages: singles.length,
          passP50Ms: round(median(singles.map((one) => one.passMs))),
          overheadP50Ms: round(median(overheads)),
          overheadP95Ms: round(percentile(overheads, 95)),
          ratioP50: round(median(singles.map((one) => one.overheadMs / one.passMs)), 3),
        },
        burst: {
          messages: BURST,
          rounds: ROUNDS,
          wallMs: round(wallMs, 0),
          passMs: round(passMs, 0),
          overheadPerMessageMs: round(median(bursts.map((one) => (one.wallMs - one.passMs) / BURST))),
          ratio: round(median(ratios), 3),
        },
      };
    } finally {
      bot.child.kill("SIGTERM");
      await bot.exited;
    }
  } finally {
    await discord.stop();
    await redis?.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

export function renderOverhead(cost: OverheadCost): string {
  const check = (ratio: number) => (ratio <= OVERHEAD_TARGET ? "✅" : "❌");
  const name = { sqlite: "SQLite", redis: "Redis" } as const;
  return [
    `### What a reaction costs beyond its pass (Qwen2.5-0.5B shape, ${cost.threads} threads, measured ${cost.date})`,
    "",
    `| Store | One message: outside the model, p50 / p95 | Its pass, p50 | Share | Burst of ${cost.runs[0]?.burst.messages} in one channel: outside the model | Share | Goal |`,
    "|---|---|---|---|---|---|---|",
    ...cost.runs.map((run) => {
      const { singles, burst } = run;
      return `| ${name[run.backend]} | ${singles.overheadP50Ms} / ${singles.overheadP95Ms} ms | ${singles.passP50Ms} ms | ${percent(singles.ratioP50, 1)} ${check(singles.ratioP50)} | ${round(burst.wallMs - burst.passMs, 0)} ms of ${burst.wallMs} ms (${burst.overheadPerMessageMs} ms a message) | ${percent(burst.ratio, 1)} ${check(burst.ratio)} | ≤ ${percent(OVERHEAD_TARGET)} |`;
    }),
    "",
  ].join("\n");
}
