import { loadavg } from "node:os";
import { backgroundPlaces } from "../src/llm/admission.js";
import type { Llm } from "../src/llm/llm.js";
import { openModel } from "../src/llm/openModel.js";
import { type Config, loadConfig, readEnvironment } from "../src/platform/config.js";
import { createLogger } from "../src/platform/logger.js";
import { loadPrompts } from "../src/prompts/prompts.js";
import { type LlamaServer, startLlamaServer } from "../testkit/llamaServer.js";
import { type BotBurst, burstThroughTheBot, peakRssMb } from "./botBurst.js";
import { round } from "./stats.js";
import { streamThroughBot, type Throughput } from "./throughput.js";
import {
  maxProbabilityDifference,
  type OneMessage,
  plainSide,
  type RuntimeSide,
  replySide,
  side,
} from "./userFacing.js";

/*
 * Both runtimes side by side, in one run, on the same model files and the same cores: the in-process runtime and
 * llama-server built from the bundle (deploy/build-llama-server.sh), started here with the in-process runtime's
 * thread count. Each runs twice: at its defaults, and at equal settings (4 in-process sentiment sequences against
 * the server's 4 slots, 4 reactions in flight on each). Every figure goes through the `Llm` that openModel returns,
 * and the server mode's burst through Discord through the real bot process with LLM_SERVER_URL set.
 */

const prompts = loadPrompts();
/** The README's llama-server command: no -np (4 slots over one unified KV cache), 2048 tokens per slot. */
const PER_SLOT_CONTEXT = 2048;
const SERVER_SLOTS = 4;
/** Equal settings: this many reactions in flight on either runtime. */
const EQUAL_REACTIONS = 4;
/**
 * On a server, background work never takes the last place in flight (a mention waits for one request at most):
 * 4 reactions in flight take LLM_SERVER_MAX_IN_FLIGHT=5, the fifth place kept for mentions.
 */
const EQUAL_SERVER_IN_FLIGHT = EQUAL_REACTIONS + 1;

export interface InProcessSettings {
  readonly sentimentSequences: number;
  readonly chatSequences: number;
}

export interface ServerSettings {
  /** LLM_SERVER_MAX_IN_FLIGHT, or undefined when unset (the server's slot count is taken). */
  readonly maxInFlightSetting: number | undefined;
  /** Requests in flight as the bot learned it, and the reactions among them. */
  readonly maxInFlight: number;
  readonly reactionsInFlight: number;
}

export interface RuntimesComparison {
  readonly settings: {
    readonly threads: number;
    /** The machine's 1-minute load average at each step of this section, lowest and highest: others' work shows. */
    readonly loadAverage: { readonly min: number; readonly max: number };
    readonly inProcess: { readonly defaults: InProcessSettings; readonly equal: InProcessSettings };
    readonly server: {
      /** llama-server's arguments beyond the model and the address. */
      readonly command: string;
      /** True when the server crashed with weight repacking (AMX) and ran with --no-repack. */
      readonly repackOff: boolean;
      /** total_slots from /props. */
      readonly slots: number;
      readonly defaults: ServerSettings;
      readonly equal: ServerSettings;
    };
  };
  readonly inProcess: { readonly defaults: RuntimeSide; readonly equal: RuntimeSide };
  readonly server: { readonly defaults: RuntimeSide; readonly equal: RuntimeSide };
  /** The realistic stream through the server at its defaults, the bot process's result cache on: capacity. */
  readonly serverStream: Throughput & { readonly hitRate: number };
  /** The burst with a long reply through the real bot process, its model on llama-server (at its defaults). */
  readonly serverBotProcess: BotBurst;
  /** llama-server's own peak RSS: on the model of the real shape, and on the long-reply model. */
  readonly serverPeakRssMb: { readonly realShape: number; readonly longReply: number };
  /** The largest difference in any label's probability of any bench message, in-process against the server. */
  readonly labelMaxDifference: number;
}

export interface RuntimesInput {
  readonly plainPath: string;
  readonly longReplyPath: string;
  readonly burstTexts: readonly string[];
  readonly stream: readonly string[];
  readonly replyTokens: number;
  /** The in-process runtime at its defaults, when the rest of the bench measured it already on its own Llm. */
  readonly inProcessDefaults?: MeasuredSide;
}

/** One side before its parts are put together: the one-message figures keep their probabilities. */
export interface MeasuredSide {
  readonly plain: Awaited<ReturnType<typeof plainSide>>;
  readonly replies: Awaited<ReturnType<typeof replySide>>;
}

class ServerNotReadyError extends Error {
  constructor(
    readonly url: string,
    readonly readinessCause: string,
  ) {
    super(`llama-server at ${url} was started but the bot could not use it: ${readinessCause}`);
  }
}

/** The bench's config with the model section for the in-process runtime at these settings, or for the server. */
function configFor(overrides: Record<string, string>): Config {
  return loadConfig({ ...readEnvironment(), ...overrides }, "console");
}

/** The Llm the bot would open for this config, with its own result cache off and admission limits out of the way. */
async function openLlm(config: Config): Promise<Llm> {
  const llm = await openModel(config.model, {
    logger: createLogger({ level: "warn" }),
    prompts,
    tasks: [],
    sentiment: { queueSize: 10_000, maxWaitMs: 600_000, cacheSize: 0 },
    chatSpeedFloor: config.chat.speedFloor,
  });
  const { readiness } = llm;
  if (!readiness.ready) {
    await llm.close();
    throw new ServerNotReadyError(config.model.runtime === "server" ? config.model.url : "", readiness.cause);
  }
  return llm;
}

async function withLlm<T>(config: Config, work: (llm: Llm) => Promise<T>): Promise<T> {
  const llm = await openLlm(config);
  try {
    return await work(llm);
  } finally {
    await llm.close();
  }
}

function inProcessConfigAt(modelPath: string, sentimentSequences: number | undefined): Config {
  return configFor({
    MODEL_PATH: modelPath,
    ...(sentimentSequences === undefined ? {} : { LLM_SENTIMENT_SEQUENCES: String(sentimentSequences) }),
  });
}

function serverConfigAt(url: string, maxInFlight: number | undefined): Config {
  // The in-process variables of the bench's environment would only draw a warning: the server's are all there is.
  return loadConfig(
    {
      LLM_SERVER_URL: url,
      ...(maxInFlight === undefined ? {} : { LLM_SERVER_MAX_IN_FLIGHT: String(maxInFlight) }),
    },
    "console",
  );
}

/**
 * Starts the bench's llama-servers, all with one command line. On a CPU with AMX the bundle's native build
 * (GGML_NATIVE) crashes in ggml_backend_amx_mul_mat on its warm-up decode of a Q8_0 model (llama.cpp issue #20824,
 * open): a first start that dies of SIGSEGV is retried once with `--no-repack`, which keeps weights out of the AMX
 * buffers and runs on the plain CPU kernels, and every later start uses it too. The printed command says which ran.
 */
class ServerLauncher {
  private repack = true;

  /** True once a start crashed with weight repacking on, and every later one runs without it. */
  get repackOff(): boolean {
    return !this.repack;
  }

  constructor(
    readonly threads: number,
    private readonly log: (line: string) => void,
  ) {}

  /** The arguments beyond the model, the address, -c and the threads. */
  get extraArgs(): string[] {
    return ["--kv-unified-per-slot", String(PER_SLOT_CONTEXT), ...(this.repack ? [] : ["--no-repack"])];
  }

  get command(): string {
    const threads = `-t ${this.threads} -tb ${this.threads}`;
    return [`-c ${SERVER_SLOTS * PER_SLOT_CONTEXT}`, ...this.extraArgs, threads].join(" ");
  }

  async start(modelPath: string): Promise<LlamaServer> {
    try {
      return await this.launch(modelPath);
    } catch (error) {
      if (!this.repack || !/exited \(SIGSEGV\)/.test((error as Error).message)) throw error;
      this.log("  llama-server crashed (SIGSEGV) loading the model; starting it again with --no-repack…");
      this.repack = false;
      return this.launch(modelPath);
    }
  }

  private launch(modelPath: string): Promise<LlamaServer> {
    return startLlamaServer({
      modelPath,
      threads: this.threads,
      contextSize: SERVER_SLOTS * PER_SLOT_CONTEXT,
      extraArgs: this.extraArgs,
    });
  }
}

async function totalSlots(server: LlamaServer): Promise<number> {
  const props = (await (await fetch(`${server.url}/props`)).json()) as { total_slots?: number };
  return props.total_slots ?? Number.NaN;
}

async function inProcessSide(
  input: RuntimesInput,
  sentimentSequences: number | undefined,
  label: string,
): Promise<MeasuredSide> {
  const plain = await withLlm(inProcessConfigAt(input.plainPath, sentimentSequences), (llm) =>
    plainSide(llm, input.burstTexts),
  );
  const replies = await withLlm(inProcessConfigAt(input.longReplyPath, sentimentSequences), (llm) =>
    replySide(llm, input.burstTexts, input.replyTokens, label),
  );
  return { plain, replies };
}

/**
 * A fresh llama-server on this model for `work`, so that every setting starts with nothing cached, as each
 * in-process run starts with a freshly loaded model; its peak RSS is read before it stops.
 */
async function onFreshServer<T>(
  launcher: ServerLauncher,
  modelPath: string,
  work: (server: LlamaServer, slots: number) => Promise<T>,
): Promise<{ result: T; slots: number; peakRssMb: number }> {
  const server = await launcher.start(modelPath);
  try {
    const slots = await totalSlots(server);
    const result = await work(server, slots);
    return { result, slots, peakRssMb: peakRssMb(server.pid ?? Number.NaN) };
  } finally {
    await server.stop();
  }
}

/** The plain model on llama-server: one message and the burst at both settings, and the stream for capacity. */
async function serverPlain(input: RuntimesInput, launcher: ServerLauncher, log: (line: string) => void) {
  log("  llama-server at its defaults: one message, the burst, the realistic stream…");
  const defaults = await onFreshServer(launcher, input.plainPath, (server, slots) =>
    withLlm(serverConfigAt(server.url, undefined), async (llm) => ({
      plain: await plainSide(llm, input.burstTexts),
      stream: await streamThroughBot(llm, input.stream, { cacheSize: 1000, width: slots }),
    })),
  );
  log(`  llama-server at equal settings (LLM_SERVER_MAX_IN_FLIGHT=${EQUAL_SERVER_IN_FLIGHT})…`);
  const equal = await onFreshServer(launcher, input.plainPath, (server) =>
    withLlm(serverConfigAt(server.url, EQUAL_SERVER_IN_FLIGHT), (llm) => plainSide(llm, input.burstTexts)),
  );
  return {
    slots: defaults.slots,
    defaults: defaults.result,
    equal: equal.result,
    peakRssMb: Math.max(defaults.peakRssMb, equal.peakRssMb),
  };
}

/** Requests in flight as the server runtime takes them: the setting, else the server's slots. */
function learnedInFlight(slots: number, setting: number | undefined): number {
  return setting ?? slots;
}

/** The long-reply model on llama-server: the replies at both settings, then the burst through the bot process. */
async function serverReplies(input: RuntimesInput, launcher: ServerLauncher, log: (line: string) => void) {
  const replies = (setting: number | undefined, label: string) =>
    onFreshServer(launcher, input.longReplyPath, (server) =>
      withLlm(serverConfigAt(server.url, setting), (llm) =>
        replySide(llm, input.burstTexts, input.replyTokens, label),
      ),
    );
  log("  llama-server at its defaults: the reply alone, the burst with it, a conversation…");
  const defaults = await replies(undefined, "server-defaults");
  log("  llama-server at equal settings: the same…");
  const equal = await replies(EQUAL_SERVER_IN_FLIGHT, "server-equal");
  log("  the burst through the real bot process, its model on llama-server…");
  const botProcess = await onFreshServer(launcher, input.longReplyPath, (server) =>
    burstThroughTheBot({
      runtimeEnv: { LLM_SERVER_URL: server.url },
      loadedLog: "model server ready",
      messages: input.burstTexts.length,
      replyTokens: input.replyTokens,
    }),
  );
  return {
    defaults: defaults.result,
    equal: equal.result,
    botProcess: botProcess.result,
    peakRssMb: Math.max(defaults.peakRssMb, equal.peakRssMb, botProcess.peakRssMb),
  };
}

export async function measureRuntimes(
  input: RuntimesInput,
  report: (line: string) => void,
): Promise<RuntimesComparison> {
  const loads: number[] = [];
  const log = (line: string) => {
    loads.push(loadavg()[0] ?? Number.NaN);
    report(line);
  };
  log("both runtimes side by side…");
  const defaultsConfig = inProcessConfigAt(input.plainPath, undefined);
  if (defaultsConfig.model.runtime !== "in-process") throw new Error("unreachable: MODEL_PATH is set");
  const threads = defaultsConfig.model.threads;
  const inProcessDefaults = input.inProcessDefaults ?? (await inProcessSide(input, undefined, "in-process"));
  log(`in-process at equal settings (LLM_SENTIMENT_SEQUENCES=${EQUAL_REACTIONS})…`);
  const inProcessEqual = await inProcessSide(input, EQUAL_REACTIONS, "in-process-equal");
  log(`llama-server from the bundle, ${threads} threads, on the same models…`);
  const launcher = new ServerLauncher(threads, log);
  const plain = await serverPlain(input, launcher, log);
  const replies = await serverReplies(input, launcher, log);
  const serverSettings = (setting: number | undefined): ServerSettings => {
    const maxInFlight = learnedInFlight(plain.slots, setting);
    return { maxInFlightSetting: setting, maxInFlight, reactionsInFlight: backgroundPlaces(maxInFlight) };
  };
  return {
    settings: {
      threads,
      loadAverage: { min: round(Math.min(...loads), 2), max: round(Math.max(...loads), 2) },
      inProcess: {
        defaults: {
          sentimentSequences: defaultsConfig.model.sentimentSequences,
          chatSequences: defaultsConfig.model.chatSequences,
        },
        equal: { sentimentSequences: EQUAL_REACTIONS, chatSequences: defaultsConfig.model.chatSequences },
      },
      server: {
        command: launcher.command,
        repackOff: launcher.repackOff,
        slots: plain.slots,
        defaults: serverSettings(undefined),
        equal: serverSettings(EQUAL_SERVER_IN_FLIGHT),
      },
    },
    inProcess: {
      defaults: side(inProcessDefaults.plain, inProcessDefaults.replies),
      equal: side(inProcessEqual.plain, inProcessEqual.replies),
    },
    server: {
      defaults: side(plain.defaults.plain, replies.defaults),
      equal: side(plain.equal, replies.equal),
    },
    serverStream: plain.defaults.stream,
    serverBotProcess: replies.botProcess,
    serverPeakRssMb: { realShape: round(plain.peakRssMb, 0), longReply: round(replies.peakRssMb, 0) },
    labelMaxDifference: labelDifference(inProcessDefaults.plain.single, plain.defaults.plain.single),
  };
}

function labelDifference(inProcess: OneMessage, server: OneMessage): number {
  return Number(maxProbabilityDifference(inProcess, server).toExponential(2));
}

/** The in-process runtime's Llm, as the bot opens it, on this model file; the bench's settings, or equal ones. */
export function inProcessLlm(modelPath: string, sentimentSequences?: number): Promise<Llm> {
  return openLlm(inProcessConfigAt(modelPath, sentimentSequences));
}
