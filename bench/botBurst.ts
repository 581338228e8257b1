import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runEntryPoint } from "../testkit/botProcess.js";
import { FakeDiscord } from "../testkit/fakeDiscord.js";
import { waitUntil } from "../testkit/waitUntil.js";
import { BENCH_MESSAGES } from "./messages.js";
import { round } from "./stats.js";

/**
 * The burst through the real bot process and the loopback Discord: `messages` messages over 4 channels as fast as
 * they go, then a mention whose reply runs to `replyTokens`. The same for either runtime: `runtimeEnv` holds the
 * model's variables (MODEL_PATH and the in-process settings, or LLM_SERVER_URL), and `loadedLog` is the log line
 * that says the model is usable (in-process "model loaded", on a server "model server ready").
 */
export interface BotBurstOptions {
  readonly runtimeEnv: Readonly<Record<string, string>>;
  readonly loadedLog: string;
  readonly messages: number;
  readonly replyTokens: number;
}

export interface BotBurst {
  /** The compute backend in-process, the server's kind on a server. */
  readonly backend: string;
  readonly startupToModelLoadedMs: number;
  readonly startupToConnectedMs: number;
  readonly burstSpreadMs: number;
  readonly reactedWithin60s: number;
  /** Reactions the bot told it made (its outcomes), against the PUTs Discord received: the two should agree. */
  readonly reactedOutcomes: number;
  readonly reactionPuts: number;
  readonly dropped: number;
  readonly wallToLastReactionMs: number;
  readonly mentionReplyStartedMs: number;
  readonly peakRssMb: number;
  /** The bot process's CPU time (user + system) from the first message to the end of the reply, per message. */
  readonly cpuMsPerMessage: number;
  readonly shutdownExitCode: number | null;
}

/** Clock ticks per second of /proc/<pid>/stat's times. */
const clockTicks = () => Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

/** User plus system CPU time of a process so far, in ms (fields 14 and 15 of /proc/<pid>/stat). */
function cpuMs(pid: number, ticksPerSecond: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) / ticksPerSecond) * 1000;
}

/** Peak resident memory of a process so far (VmHWM), in MB. */
export function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(status.match(/VmHWM:\s+(\d+) kB/)?.[1] ?? Number.NaN) / 1024;
}

export async function burstThroughTheBot(options: BotBurstOptions): Promise<BotBurst> {
  const discord = await new FakeDiscord({ channels: 4 }).start();
  const dataDir = await mkdtemp(join(tmpdir(), "moodbot-bench-"));
  const ticks = clockTicks();
  try {
    const spawnedAt = Date.now();
    const bot = await runEntryPoint("src/index.ts", {
      ...options.runtimeEnv,
      DISCORD_TOKEN: "bench-token",
      DISCORD_API_URL: discord.apiUrl,
      STORE_URL: `sqlite://${join(dataDir, "bot.sqlite")}`,
      CHAT_MAX_TOKENS: String(options.replyTokens),
      SENTIMENT_CACHE_SIZE: "0",
      LOG_LEVEL: "debug",
    });
    // Ready when the loopback gateway has sent READY; the bot's own log says when its model was usable.
    const [ready] = await bot.whileRunning(discord.waitForReadies(1, 360_000), "the gateway's READY");
    const loaded = bot.logs().find((line) => line.msg === options.loadedLog) ?? {};
    const pid = bot.child.pid ?? Number.NaN;
    const channels = discord.guilds[0]?.channelIds ?? [];
    const texts = BENCH_MESSAGES.filter((text) => text.length > 3);
    const sentAt = new Map<string, number>();
    const cpuBefore = cpuMs(pid, ticks);
    const started = Date.now();
    for (let i = 0; i < options.messages; i++) {
      const id = discord.sendMessage({
        content: `${texts[i % texts.length]} #${i}`,
        channelId: channels[i % channels.length] ?? discord.channelId,
      });
      sentAt.set(id, Date.now());
    }
    const mentionAt = Date.now();
    discord.sendMessage({
      content: `<@${discord.botUser.id}> what's happening in here?`,
      channelId: discord.channelId,
      mentionBot: true,
    });
    const spreadMs = mentionAt - started;
    const [reply] = await discord.waitForRequests("POST", /^\/channels\/\d+\/messages$/, 1, 120_000);
    // Every message of the burst ends reacted or dropped; a reaction's time is when Discord received its PUT.
    const ofBurst = (outcome: { messageId: string }) => sentAt.has(outcome.messageId);
    await bot.whileRunning(
      waitUntil(
        () =>
          bot.outcomes.all("reacted", ofBurst).length + bot.outcomes.all("shed", ofBurst).length >=
          options.messages,
        {
          timeoutMs: 300_000,
          failure: () => "the burst's messages were neither all reacted nor dropped in 300 s",
        },
      ),
      "the burst's outcomes",
    );
    const reactionPuts = discord
      .acceptedMatching("PUT", /^\/channels\/\d+\/messages\/\d+\/reactions\//)
      .map((put) => ({ id: put.path.split("/")[4] ?? "", at: put.at }))
      .filter((put) => sentAt.has(put.id));
    const reactedAt = reactionPuts.map((put) => put.at - (sentAt.get(put.id) ?? 0));
    await bot.whileRunning(bot.outcomes.next("replied", {}, 600_000), "the mention's reply");
    const cpuDuring = cpuMs(pid, ticks) - cpuBefore;
    const peakRss = peakRssMb(pid);
    bot.child.kill("SIGTERM");
    const exit = await bot.exited;
    const lastReactionAt = Math.max(...reactionPuts.map((put) => put.at));
    return {
      backend: String(loaded.backend ?? loaded.kind),
      startupToModelLoadedMs: Number(loaded.time) - spawnedAt,
      startupToConnectedMs: (ready?.at ?? Number.NaN) - spawnedAt,
      burstSpreadMs: spreadMs,
      reactedWithin60s: reactedAt.filter((ms) => ms <= 60_000).length,
      reactedOutcomes: bot.outcomes.all("reacted", ofBurst).length,
      reactionPuts: reactionPuts.length,
      dropped: bot.outcomes.all("shed", ofBurst).length,
      wallToLastReactionMs: lastReactionAt - started,
      mentionReplyStartedMs: (reply?.at ?? Number.NaN) - mentionAt,
      peakRssMb: round(peakRss, 0),
      cpuMsPerMessage: round(cpuDuring / (options.messages + 1), 1),
      shutdownExitCode: exit.code,
    };
  } finally {
    await discord.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
