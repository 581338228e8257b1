import { createHash } from "node:crypto";
import type { Logger } from "../../platform/logger.js";
import type { SentimentLabel } from "../../platform/sentimentLabels.js";
import type { ChatTurn, Prompts } from "../../prompts/prompts.js";
import { renderTaskTurns, type Task } from "../../tasks/tasks.js";
import { textTaskInputTokens } from "../../text/inputBudget.js";
import { Admission, type AdmissionRequest } from "../admission.js";
import {
  type CacheStats,
  type ChatCompletion,
  type ClassifyOptions,
  type GenerateChatOptions,
  type LabelResult,
  type Llm,
  type ModelReadiness,
  type ModelRuntimeInfo,
  NO_CACHE_STATS,
  type PromptReload,
  type QueueDepth,
  type SchedulerStats,
  type SentimentResult,
  type ServerKind,
  type TaskOutcome,
} from "../llm.js";
import { Connection } from "./connection.js";
import { LabelsUnreadableError, type LabelVotes } from "./serverLabels.js";
import { estimateTokens, truncateByEstimate } from "./serverPrompts.js";
import {
  type CompletionSettings,
  classifyOnSession,
  completeOnSession,
  type LabelLane,
  type ServerSession,
} from "./session.js";
import { describeSession, SessionGuard } from "./sessionGuard.js";

/** Free-text tasks are summaries and the like: a low temperature keeps them factual (as in-process). */
const TEXT_TASK_TEMPERATURE = 0.3;
/**
 * The context before the first contact: the in-process default and LLM_CONTEXT_SIZE's minimum. Nothing runs on
 * the model then, but budgets worked out just before the server comes up still hold on any usable server.
 */
export const CONTEXT_BEFORE_CONTACT = 2048;
const NOT_CONNECTED: readonly (string | number)[] = Object.freeze(["server", "not connected"]);

export interface ServerLlmOptions {
  readonly logger: Logger;
  /** The configured kind: what the runtime reports before the first contact. */
  readonly kind: ServerKind | "auto";
  readonly model: string | undefined;
  readonly sentiment: { readonly queueSize: number; readonly maxWaitMs: number };
  readonly prompts: Prompts;
  readonly tasks: readonly Task[];
  /** One contact with the server, for the prompts and tasks now loaded. */
  readonly learn: (prompts: Prompts, tasks: readonly Task[], signal: AbortSignal) => Promise<ServerSession>;
  /** Wraps a classification or a generation so that it is reported (metrics). */
  readonly reported: <T>(kind: "classify" | "chat", work: () => Promise<T>) => Promise<T>;
  /** Frees the connection pool. */
  readonly closeTransport: () => void;
  /** Retry waits, for tests that should not wait 30 s. */
  readonly retry?: { readonly firstMs: number; readonly maxMs: number };
}

/**
 * The model on an inference server, as the bot sees it. Everything above one ServerBackend: admission (priorities,
 * round-robin, shedding), prompts rendered from the served model's template, label reading, and readiness with
 * reconnection. While the server cannot be used, work fails at once with ModelUnavailableError.
 */
export class ServerLlm implements Llm {
  readonly backend = "server";
  private readonly admission: Admission;
  private readonly connection: Connection<ServerSession>;
  private readonly lifetime = new AbortController();
  private readonly guard: SessionGuard;
  private prompts: Prompts;
  private tasks: readonly Task[];

  constructor(private readonly options: ServerLlmOptions) {
    this.prompts = options.prompts;
    this.tasks = options.tasks;
    this.admission = new Admission({
      logger: options.logger.child({ component: "admission" }),
      maxInFlight: 1,
      maxBackgroundQueue: options.sentiment.queueSize,
      maxBackgroundAgeMs: options.sentiment.maxWaitMs,
    });
    this.connection = new Connection({
      logger: options.logger.child({ component: "model-server" }),
      learn: (signal) => options.learn(this.prompts, this.tasks, signal),
      onSession: (session) => this.admission.setMaxInFlight(session.maxInFlight),
      describe: describeSession,
      ...(options.retry ? { firstRetryMs: options.retry.firstMs, maxRetryMs: options.retry.maxMs } : {}),
    });
    this.guard = new SessionGuard(this.connection, this.lifetime.signal);
  }

  /** The first contact: resolves once it succeeded or failed; a failure leaves the model not ready, retrying. */
  start(): Promise<void> {
    return this.connection.start();
  }

  private get known(): ServerSession | undefined {
    return this.connection.session ?? this.connection.lastSession;
  }

  get modelName(): string {
    return this.known?.facts.model ?? this.options.model ?? "not connected";
  }

  /** The last known context while reconnecting: the server most likely comes back with the same one. */
  get contextSize(): number {
    return this.known?.facts.contextSize ?? CONTEXT_BEFORE_CONTACT;
  }

  get runtime(): ModelRuntimeInfo {
    const known = this.known;
    if (known) return { kind: known.facts.kind, method: known.method, model: known.facts.model };
    // Before any contact an "auto" address has no kind yet; the generic protocol is what it is assumed to speak.
    const kind = this.options.kind === "auto" ? "openai" : this.options.kind;
    const method = kind === "llama.cpp" || kind === "vllm" ? "logits" : "top-logprobs";
    return { kind, method, model: this.modelName };
  }

  get readiness(): ModelReadiness {
    return this.connection.readiness;
  }

  /** The tokens each sentiment label is read from on the server now (`npm run model -- verify` prints them). */
  get sentimentVotes(): LabelVotes<SentimentLabel> | undefined {
    return this.connection.session?.sentiment.votes;
  }

  get resultIdentity(): readonly (string | number)[] {
    return this.known?.identity ?? NOT_CONNECTED;
  }

  get schedulerStats(): Readonly<SchedulerStats> {
    return this.admission.stats;
  }

  get queueDepth(): QueueDepth {
    return this.admission.queueDepth;
  }

  get inFlight(): number {
    return this.admission.inFlight;
  }

  /** The result caches are a layer over this model (ResultCachedLlm). */
  get cacheStats(): CacheStats {
    return NO_CACHE_STATS;
  }

  classifySentiment(text: string, options: ClassifyOptions = {}): Promise<SentimentResult> {
    return this.classify("sentiment", (session) => session.sentiment, text, {
      ...options,
      priority: options.priority ?? "background",
    });
  }

  async generateChat(turns: readonly ChatTurn[], options: GenerateChatOptions): Promise<ChatCompletion> {
    const request = admissionRequest("chat", "interactive", { signal: options.signal }, true);
    return this.generate(request, turns, {
      maxTokens: options.maxTokens,
      temperature: options.temperature,
      onText: options.onText,
      conversationId: conversationId(options.channelKey),
    });
  }

  async runTask(task: Task, input: string, options: ClassifyOptions = {}): Promise<TaskOutcome> {
    const kind = `task:${task.name}`;
    if (task.output.kind === "labels") {
      const lane = (session: ServerSession) => session.tasks.get(task.name);
      const result = await this.classify(kind, lane, input, {
        ...options,
        priority: options.priority ?? "interactive",
      });
      return { kind: "labels", result };
    }
    const maxTokens = task.output.maxTokens;
    // A channel's transcript was read within this budget already (Pipeline.taskInputBudget); the cut holds it for
    // any other input, so the prompt and the answer always fit the context.
    const text = await this.truncateToTokens(
      input,
      textTaskInputTokens(this.contextSize, maxTokens),
      options.signal,
    );
    const { group, signal } = options;
    const request = admissionRequest(kind, options.priority ?? "interactive", { group, signal }, true);
    const completion = await this.generate(request, renderTaskTurns(task, text), {
      maxTokens,
      temperature: TEXT_TASK_TEMPERATURE,
      onText: undefined,
      conversationId: undefined,
    });
    return { kind: "text", text: completion.text, generatedTokens: completion.generatedTokens };
  }

  /**
   * New prompts and tasks: while ready, the server is contacted again at once and every label set's vote tokens
   * and prefix resolved anew (a failure leaves the model not ready, with the cause); otherwise the next contact
   * uses them. A request in flight finishes on the prompts it started with.
   */
  async reload(prompts: Prompts, tasks: readonly Task[]): Promise<PromptReload> {
    this.prompts = prompts;
    this.tasks = tasks;
    if (this.connection.session) await this.connection.refresh();
    return {
      sentimentPrefixTokens: this.connection.session?.sentiment.prompt.prefixTokens ?? 0,
      withoutSequence: [],
    };
  }

  /**
   * Through the server's tokenizer where it has one and can be reached; otherwise (Ollama, OpenAI-compatible APIs,
   * or a server that is down) an estimate that errs high (serverPrompts.ts), so a budget built on it still fits.
   */
  async countTokens(text: string, signal?: AbortSignal): Promise<number> {
    if (text === "") return 0;
    const tokens = await this.guard.tokens(text, signal);
    return tokens?.length ?? estimateTokens(text);
  }

  async truncateToTokens(text: string, maxTokens: number, signal?: AbortSignal): Promise<string> {
    const tokens = text === "" ? [] : await this.guard.tokens(text, signal);
    const tokenizer = this.connection.session?.tokenizer;
    if (!tokens || !tokenizer) return truncateByEstimate(text, maxTokens).text;
    if (tokens.length <= maxTokens) return text;
    return tokenizer.detokenize(tokens.slice(0, maxTokens), signal ?? this.lifetime.signal);
  }

  interrupt(): void {
    this.admission.close();
  }

  async close(): Promise<void> {
    this.admission.close();
    await this.admission.whenIdle();
    this.connection.close();
    this.lifetime.abort();
    this.options.closeTransport();
  }

  private async classify<L extends string>(
    kind: string,
    laneOf: (session: ServerSession) => LabelLane<L> | LabelsUnreadableError | undefined,
    text: string,
    options: ClassifyOptions & Pick<AdmissionRequest, "priority">,
  ): Promise<LabelResult<L>> {
    this.guard.require();
    const request = admissionRequest(kind, options.priority, options, false);
    return this.admission.run(request, (signal) =>
      this.guard.run(() => {
        const session = this.guard.require();
        const lane = laneOf(session);
        if (!lane) throw new Error(`the task ${kind} was not loaded with the model`);
        if (lane instanceof LabelsUnreadableError)
          throw new LabelsUnreadableError(lane.labelSet, lane.labels);
        return classifyOnSession(session, lane, text, signal, this.options.reported, request.priority);
      }),
    );
  }

  private async generate(
    request: AdmissionRequest,
    turns: readonly ChatTurn[],
    settings: Omit<CompletionSettings, "onText"> & { readonly onText: ((text: string) => void) | undefined },
  ): Promise<ChatCompletion> {
    this.guard.require();
    const onText = settings.onText ?? (() => {});
    return this.admission.run(request, (signal) =>
      this.guard.run(() =>
        completeOnSession(
          this.guard.require(),
          turns,
          { ...settings, onText, priority: request.priority },
          signal,
          this.options.reported,
        ),
      ),
    );
  }
}

function admissionRequest(
  kind: string,
  priority: AdmissionRequest["priority"],
  options: {
    readonly group?: string | undefined;
    readonly shedLast?: boolean;
    readonly signal?: AbortSignal | undefined;
  },
  generation: boolean,
): AdmissionRequest {
  return {
    kind,
    priority,
    ...(generation ? { generation } : {}),
    ...(options.group === undefined ? {} : { group: options.group }),
    ...(options.shedLast ? { shedLast: true } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
}

/**
 * A stable id of a conversation for the server side (a balancer hashes on it): a digest of the channel key, so the
 * server's logs need not hold Discord ids.
 */
function conversationId(channelKey: string): string {
  return createHash("sha256").update(channelKey).digest("hex").slice(0, 16);
}
