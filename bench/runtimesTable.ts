/*
 * Both runtimes side by side, rendered from bench/results.json's `runtimes` (bench/serverRuntime.ts measured them):
 * the settings, the targets as ratios of one run, and every figure at both settings. bench/resultsTable.ts puts it
 * under the bench's own tables, so the README's copy is checked like theirs.
 */

import type { WithReply } from "./userFacing.js";

interface Side {
  readonly oneMessage: { readonly p50Ms: number; readonly p95Ms: number };
  readonly burst: { readonly messages: number; readonly ms: number; readonly perSecond: number };
  readonly withReply: WithReply;
  readonly conversation: {
    readonly coldFirstTokenMs: number;
    readonly warmFirstTokenMs: number;
    readonly coldPromptTokens: number;
    readonly warmPromptTokens: number;
  };
}

interface ServerSetting {
  readonly maxInFlightSetting?: number | undefined;
  readonly maxInFlight: number;
  readonly reactionsInFlight: number;
}

interface BotRun {
  readonly reactedWithin60s: number;
  readonly dropped: number;
  readonly wallToLastReactionMs: number;
  readonly peakRssMb: number;
}

/** The part of bench/results.json this reads. */
export interface RuntimesTableInput {
  readonly runtimes: {
    readonly settings: {
      readonly threads: number;
      readonly loadAverage: { readonly min: number; readonly max: number };
      readonly inProcess: Readonly<
        Record<"defaults" | "equal", { readonly sentimentSequences: number; readonly chatSequences: number }>
      >;
      readonly server: {
        readonly command: string;
        readonly repackOff: boolean;
        readonly slots: number;
        readonly defaults: ServerSetting;
        readonly equal: ServerSetting;
      };
    };
    readonly inProcess: Readonly<Record<"defaults" | "equal", Side>>;
    readonly server: Readonly<Record<"defaults" | "equal", Side>>;
    readonly serverStream: {
      readonly messages: number;
      readonly perSecond: number;
      readonly hitRate: number;
    };
    readonly serverBotProcess: BotRun & { readonly cpuMsPerMessage: number };
    readonly serverPeakRssMb: { readonly realShape: number; readonly longReply: number };
    readonly labelMaxDifference: number;
  };
  /** The in-process bot process's burst with the long reply, and on the model of the real shape (for memory). */
  readonly process: BotRun;
  readonly realShape: { readonly peakRssMb: number };
  readonly throughput?: Readonly<Record<string, { readonly perSecond: number }>>;
}

/** The targets, as ratios of one run. */
export const RUNTIME_TARGETS = {
  labelDifference: 1e-3,
  burstRatio: 1.3,
  firstTokenOverAlone: 2,
  oneMessageRatio: 1.1,
  warmFirstTokenRatio: 1.2,
  botRssMb: 250,
} as const;

const check = (ok: boolean) => (ok ? "✅" : "❌");
const ratio = (a: number, b: number) => Number((a / b).toFixed(2));

function inFlightSetting(s: ServerSetting): string {
  return s.maxInFlightSetting === undefined
    ? `LLM_SERVER_MAX_IN_FLIGHT unset (the server's ${s.maxInFlight} slots, ${s.reactionsInFlight} of them for reactions)`
    : `LLM_SERVER_MAX_IN_FLIGHT=${s.maxInFlightSetting} (${s.reactionsInFlight} reactions in flight, one place kept for mentions)`;
}

function settingsLine(r: RuntimesTableInput["runtimes"]): string {
  const { inProcess, server, threads } = r.settings;
  return [
    `Both runtimes on the same model files, one at a time on the same cores, with ${threads} threads each.`,
    `In-process: defaults LLM_SENTIMENT_SEQUENCES=${inProcess.defaults.sentimentSequences}, LLM_CHAT_SEQUENCES=${inProcess.defaults.chatSequences};`,
    `equal settings LLM_SENTIMENT_SEQUENCES=${inProcess.equal.sentimentSequences}. llama-server built from the bundle, started by the bench with`,
    `\`${server.command}\` (${server.slots} slots over one unified KV cache); defaults ${inFlightSetting(server.defaults)};`,
    `equal settings ${inFlightSetting(server.equal)}. Every figure but the bot process's goes through the \`Llm\` that`,
    "`openModel` returns, with its result cache off; the bench process is the server's client, on the same cores.",
    `The machine's 1-minute load average went from ${r.settings.loadAverage.min} to ${r.settings.loadAverage.max} across this part: work of other processes on the`,
    "same cores slows whichever runtime it meets, so a ratio is only as steady as that load.",
    ...(server.repackOff
      ? [
          "On this CPU the bundle's native build of llama-server crashed in its AMX kernels loading the model (llama.cpp",
          "issue #20824), so it ran with `--no-repack`, on the plain CPU kernels, while node-llama-cpp's prebuilt CPU",
          "variant in-process keeps its AMX ones: the ratios below compare those kernels as much as the runtimes.",
        ]
      : []),
  ].join("\n");
}

function targetRows(r: RuntimesTableInput): Array<[string, string, string, string]> {
  const { inProcess, server, serverBotProcess: bot } = r.runtimes;
  const t = RUNTIME_TARGETS;
  const burstEqual = ratio(server.equal.burst.perSecond, inProcess.equal.burst.perSecond);
  const burstDefaults = ratio(server.defaults.burst.perSecond, inProcess.defaults.burst.perSecond);
  const single = ratio(server.defaults.oneMessage.p50Ms, inProcess.defaults.oneMessage.p50Ms);
  const warm = ratio(
    server.defaults.conversation.warmFirstTokenMs,
    inProcess.defaults.conversation.warmFirstTokenMs,
  );
  const reply = server.defaults.withReply;
  const messages = server.defaults.burst.messages;
  return [
    [
      "Label probabilities, in-process vs llama-server (logits), the bench's messages one at a time",
      `largest difference ${r.runtimes.labelMaxDifference}`,
      `≤ ${t.labelDifference}`,
      check(r.runtimes.labelMaxDifference <= t.labelDifference),
    ],
    [
      `Burst of ${messages} without a reply, server vs in-process, equal settings (messages a second)`,
      `${burstEqual}× (${server.equal.burst.perSecond} vs ${inProcess.equal.burst.perSecond}/s); at defaults ${burstDefaults}× (${server.defaults.burst.perSecond} vs ${inProcess.defaults.burst.perSecond}/s)`,
      `≥ ${t.burstRatio}×`,
      check(burstEqual >= t.burstRatio),
    ],
    [
      `Burst of ${messages} with a ${reply.generatedTokens}-token reply on the server: reacted within 60 s (real bot process)`,
      `${bot.reactedWithin60s} of ${messages} (${bot.dropped} dropped; last at ${bot.wallToLastReactionMs} ms)`,
      `${messages} of ${messages}`,
      check(bot.reactedWithin60s === messages),
    ],
    [
      "… the mention's first token during that burst vs alone (server, defaults)",
      `${reply.mentionFirstTokenMs} vs ${reply.aloneFirstTokenMs} ms (${reply.firstTokenOverAlone}×)`,
      `≤ ${t.firstTokenOverAlone}×`,
      check(reply.firstTokenOverAlone <= t.firstTokenOverAlone),
    ],
    [
      "One message, server vs in-process (p50, defaults)",
      `${single}× (${server.defaults.oneMessage.p50Ms} vs ${inProcess.defaults.oneMessage.p50Ms} ms)`,
      `≤ ${t.oneMessageRatio}×`,
      check(single <= t.oneMessageRatio),
    ],
    [
      "First token of a warm conversation, server vs in-process (defaults)",
      `${warm}× (${server.defaults.conversation.warmFirstTokenMs} vs ${inProcess.defaults.conversation.warmFirstTokenMs} ms)`,
      `≤ ${t.warmFirstTokenRatio}×`,
      check(warm <= t.warmFirstTokenRatio),
    ],
    [
      "Peak RSS of the bot process in server mode (the burst with the reply)",
      `${bot.peakRssMb} MB`,
      `≤ ${t.botRssMb} MB`,
      check(bot.peakRssMb <= t.botRssMb),
    ],
  ];
}

type Row = [string, string, string, string, string];

function measureRows(r: RuntimesTableInput): Row[] {
  const { inProcess, server } = r.runtimes;
  const sides = [inProcess.defaults, server.defaults, inProcess.equal, server.equal] as const;
  const each = (cell: (s: Side) => string) => sides.map(cell) as [string, string, string, string];
  const reply = server.defaults.withReply;
  const bot = r.runtimes.serverBotProcess;
  const streamOn = r.throughput?.streamCacheOn?.perSecond;
  return [
    ["One message alone, p50 / p95", ...each((s) => `${s.oneMessage.p50Ms} / ${s.oneMessage.p95Ms} ms`)],
    [
      `Burst of ${server.defaults.burst.messages}, no reply: messages a second (wall)`,
      ...each((s) => `${s.burst.perSecond}/s (${s.burst.ms} ms)`),
    ],
    [
      `Burst with a ${reply.generatedTokens}-token reply: reacted within 60 s, last reaction`,
      ...each(
        (s) => `${s.withReply.reactedWithin60s} (${s.withReply.dropped} dropped), ${s.withReply.wallMs} ms`,
      ),
    ],
    [
      "… the mention's first token: during the burst / alone",
      ...each(
        (s) =>
          `${s.withReply.mentionFirstTokenMs} / ${s.withReply.aloneFirstTokenMs} ms (${s.withReply.firstTokenOverAlone}×)`,
      ),
    ],
    [
      "… the reply's tokens a second: during the burst / alone",
      ...each((s) => `${s.withReply.tokensPerSecondDuring} / ${s.withReply.aloneTokensPerSecond}`),
    ],
    [
      "A conversation's first token, 10-turn history: cold / warm (prompt tokens)",
      ...each(
        (s) =>
          `${s.conversation.coldFirstTokenMs} / ${s.conversation.warmFirstTokenMs} ms (${s.conversation.coldPromptTokens} / ${s.conversation.warmPromptTokens})`,
      ),
    ],
    [
      "The burst with the reply through the real bot process: reacted within 60 s",
      `${r.process.reactedWithin60s} (last at ${r.process.wallToLastReactionMs} ms)`,
      `${bot.reactedWithin60s} (last at ${bot.wallToLastReactionMs} ms)`,
      "",
      "",
    ],
    [
      "Peak RSS: the bot process / llama-server (model of the real shape; long-reply model)",
      `${r.realShape.peakRssMb} MB (${r.process.peakRssMb} MB); no server`,
      `${bot.peakRssMb} MB / ${r.runtimes.serverPeakRssMb.realShape} MB (${r.runtimes.serverPeakRssMb.longReply} MB)`,
      "",
      "",
    ],
    [
      "Bot process in server mode: CPU time per message (the burst and the mention)",
      "",
      `${bot.cpuMsPerMessage} ms`,
      "",
      "",
    ],
    [
      `Realistic stream of ${r.runtimes.serverStream.messages}, the bot's result cache on`,
      streamOn === undefined ? "" : `${streamOn}/s`,
      `${r.runtimes.serverStream.perSecond}/s`,
      "",
      "",
    ],
  ];
}

/** The side-by-side section: settings, targets, figures. */
export function renderRuntimes(r: RuntimesTableInput): string {
  return [
    settingsLine(r.runtimes),
    "",
    "| Target (llama-server vs in-process, one run) | Result | Goal | |",
    "| --- | --- | --- | --- |",
    ...targetRows(r).map((row) => `| ${row.join(" | ")} |`),
    "",
    "| Measure | In-process, defaults | llama-server, defaults | In-process, equal | llama-server, equal |",
    "| --- | --- | --- | --- | --- |",
    ...measureRows(r).map((row) => `| ${row.join(" | ")} |`),
    "",
  ].join("\n");
}
