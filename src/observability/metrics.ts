import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { ServerProblem } from "../errors.js";
import type { CacheStats, ModelReadiness, ModelRuntimeInfo, PassReport, QueueDepth } from "../llm/llm.js";

/*
 * The Prometheus metrics of one bot process, on a registry of its own (never prom-client's global one). Events
 * are counted where they happen, through the methods below; what the model and the store already count is read
 * when Prometheus scrapes, through the sources given to `watch`. Every name is in docs/operations.md and in the
 * Grafana dashboard in deploy/.
 */

/** What the metrics read at scrape time. */
export interface MetricSources {
  readonly model: {
    readonly queueDepth: QueueDepth;
    readonly cacheStats: CacheStats;
    /** Read at each scrape: a server runtime learns its model on the first good contact, and again on reconnect. */
    readonly runtime: ModelRuntimeInfo;
    readonly backend: string;
    readonly readiness: ModelReadiness;
    /** Requests to a model server running now (Llm.inFlight); read only where the runtime is a server. */
    readonly inFlight?: number;
  };
  readonly store: {
    /** Whether the store answers now. */
    readonly reachable: boolean;
    /** Turns waiting in memory for the store to come back. */
    readonly bufferedTurns: number;
    /** Reads and writes that failed, since the start. */
    readonly errors: number;
  };
}

/** What `moodbot_model_info` says beside the model's runtime: the in-process thread count, which a server has not. */
export interface ModelInfo {
  readonly threads: number | undefined;
}

/**
 * One request to a model server, as the server runtime reports it (its `onRequest`): the shape of
 * ServerRequestReport in src/llm/server/, repeated so that the metrics need not import the runtime.
 */
export interface ServerRequestObservation {
  readonly kind: "probe" | "tokenize" | "classify" | "chat";
  readonly durationMs: number;
  /** Undefined when it succeeded. */
  readonly problem: ServerProblem | undefined;
}

const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];
const PASS_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const TOKEN_RATE_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200];
/** From a cached tokenisation (milliseconds) to a long streamed reply (a minute). */
const SERVER_REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class Metrics {
  readonly registry = new Registry();
  private sources: MetricSources | undefined;

  private readonly messagesSeen = this.counter("moodbot_messages_seen_total", "Messages the bot received.");
  private readonly messagesReacted = new Counter({
    name: "moodbot_messages_reacted_total",
    help: "Messages that got a mood reaction, by sentiment label.",
    labelNames: ["label"] as const,
    registers: [this.registry],
  });
  private readonly messagesSkipped = new Counter({
    name: "moodbot_messages_skipped_total",
    help: "Messages that got no mood reaction by design (a bot's message, reactions off, ...) or because the model was not ready (model_unavailable), by reason.",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  private readonly reactionsShed = new Counter({
    name: "moodbot_reactions_shed_total",
    help: "Mood reactions dropped under load or on shutdown, by reason.",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  private readonly moderationChecks = new Counter({
    name: "moodbot_moderation_checks_total",
    help: "Messages moderation classified, by label.",
    labelNames: ["label"] as const,
    registers: [this.registry],
  });
  private readonly moderationChecksShed = new Counter({
    name: "moodbot_moderation_checks_shed_total",
    help: "Moderation checks dropped under load or on shutdown, by reason.",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  private readonly moderationChecksSkipped = new Counter({
    name: "moodbot_moderation_checks_skipped_total",
    help: "Moderation checks not run because the model was not ready (a model server away), by reason.",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  private readonly moderationAlerts = new Counter({
    name: "moodbot_moderation_alerts_total",
    help: "Moderation alerts, by outcome: posted live or dry-run, or capped (over the channel's hourly limit).",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  private readonly reactionLatency = new Histogram({
    name: "moodbot_reaction_latency_seconds",
    help: "From the gateway event to the reaction accepted by Discord.",
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly modelPasses = this.counter("moodbot_model_passes_total", "Forward passes of the model.");
  private readonly sentimentPasses = this.counter(
    "moodbot_sentiment_passes_total",
    "Forward passes that carried at least one sentiment classification.",
  );
  private readonly sentimentClassifications = this.counter(
    "moodbot_sentiment_classifications_total",
    "Sentiment classifications the model ran (cache hits excluded).",
  );
  private readonly sentimentPassDuration = new Histogram({
    name: "moodbot_sentiment_pass_duration_seconds",
    help: "Duration of the forward passes that carried sentiment classifications.",
    buckets: PASS_BUCKETS,
    registers: [this.registry],
  });
  private readonly chatReplies = this.counter("moodbot_chat_replies_total", "Chat replies sent.");
  private readonly chatFirstToken = new Histogram({
    name: "moodbot_chat_first_token_seconds",
    help: "From the mention's gateway event to the first words of the reply.",
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly chatTokenRate = new Histogram({
    name: "moodbot_chat_tokens_per_second",
    help: "Generation speed of each chat reply, from its first token to its last.",
    buckets: TOKEN_RATE_BUCKETS,
    registers: [this.registry],
  });
  private readonly gatewayReconnects = this.counter(
    "moodbot_gateway_reconnects_total",
    "Times a gateway connection was lost and the client reconnected.",
  );
  private readonly gatewayResumes = this.counter(
    "moodbot_gateway_resumes_total",
    "Gateway sessions resumed after a reconnect (no events lost).",
  );
  private readonly restRateLimited = this.counter(
    "moodbot_rest_rate_limited_total",
    "REST responses with status 429 from Discord.",
  );
  private readonly serverRequestSeconds = new Histogram({
    name: "moodbot_model_server_request_seconds",
    help: "Requests to the model server that succeeded, by kind (probe, tokenize, classify, chat); a chat request lasts its whole stream.",
    labelNames: ["kind"] as const,
    buckets: SERVER_REQUEST_BUCKETS,
    registers: [this.registry],
  });
  private readonly serverErrors = new Counter({
    name: "moodbot_model_server_errors_total",
    help: "Requests to the model server that failed, by cause (unreachable, unauthorized, timeout, http, protocol, unsupported) and kind.",
    labelNames: ["cause", "kind"] as const,
    registers: [this.registry],
  });
  private threads: number | undefined;

  /**
   * `processMetrics` adds prom-client's process and Node.js metrics (memory, event-loop delay, GC): they sample
   * all the time, so a process that serves no /metrics goes without them.
   */
  constructor(options: { readonly processMetrics?: boolean } = {}) {
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    const metrics = this;
    const catchUp = totalFollower();
    new Gauge({
      name: "moodbot_model_queue_depth",
      help: "Jobs waiting for the model, by priority (interactive commands, background reactions, chat).",
      labelNames: ["priority"] as const,
      registers: [this.registry],
      collect() {
        const depth = metrics.sources?.model.queueDepth;
        if (!depth) return;
        for (const [priority, value] of Object.entries(depth)) this.set({ priority }, value);
      },
    });
    const cacheHits = new Counter({
      name: "moodbot_result_cache_hits_total",
      help: "Sentiment results served from a cache with no model work, by cache (local or shared through Redis).",
      labelNames: ["cache"] as const,
      registers: [this.registry],
      collect() {
        const stats = metrics.sources?.model.cacheStats;
        if (!stats) return;
        catchUp(this, { cache: "local" }, stats.hits);
        catchUp(this, { cache: "shared" }, stats.shared.hits);
      },
    });
    cacheHits.inc({ cache: "local" }, 0);
    new Gauge({
      name: "moodbot_model_info",
      help: "The model in use: always 1, with where it runs (runtime: in-process or the server's kind), how labels are read (method), the model, the backend and the in-process threads as labels.",
      labelNames: ["runtime", "method", "model", "backend", "threads"] as const,
      registers: [this.registry],
      collect() {
        const model = metrics.sources?.model;
        if (!model) return;
        // A reconnect may bring another model: only the one in use now is 1.
        this.reset();
        const { kind, method, model: name } = model.runtime;
        const threads = metrics.threads === undefined ? "" : String(metrics.threads);
        this.set({ runtime: kind, method, model: name, backend: model.backend, threads }, 1);
      },
    });
    new Gauge({
      name: "moodbot_model_up",
      help: "1 while the model can take work, 0 while it cannot (a model server unreachable, refusing the key, or unusable).",
      registers: [this.registry],
      collect() {
        const model = metrics.sources?.model;
        if (model) this.set(model.readiness.ready ? 1 : 0);
      },
    });
    new Gauge({
      name: "moodbot_model_server_in_flight",
      help: "Requests to the model server running now.",
      registers: [this.registry],
      collect() {
        const model = metrics.sources?.model;
        // In-process work runs in passes, not requests: the gauge counts a server's requests only.
        if (model?.inFlight !== undefined && model.runtime.kind !== "in-process") this.set(model.inFlight);
      },
    });
    new Counter({
      name: "moodbot_store_errors_total",
      help: "Store reads and writes that failed (history is then served from memory and buffered).",
      registers: [this.registry],
      collect() {
        const store = metrics.sources?.store;
        if (store) catchUp(this, {}, store.errors);
      },
    });
    new Gauge({
      name: "moodbot_store_buffered_turns",
      help: "History turns held in memory while the store is unreachable.",
      registers: [this.registry],
      collect() {
        const store = metrics.sources?.store;
        if (store) this.set(store.bufferedTurns);
      },
    });
    new Gauge({
      name: "moodbot_store_up",
      help: "1 while the store answers, 0 while it is unreachable (the bot keeps serving from memory).",
      registers: [this.registry],
      collect() {
        const store = metrics.sources?.store;
        if (store) this.set(store.reachable ? 1 : 0);
      },
    });
  }

  /** Starts reading the model's and the store's own counts at every scrape. */
  watch(sources: MetricSources, model: ModelInfo): void {
    this.sources = sources;
    this.threads = model.threads;
  }

  /** The text Prometheus scrapes. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  messageSeen(): void {
    this.messagesSeen.inc();
  }

  messageSkipped(reason: string): void {
    this.messagesSkipped.inc({ reason: slug(reason) });
  }

  reactionShed(reason: string): void {
    this.reactionsShed.inc({ reason: slug(reason.replace(/^shed: /, "")) });
  }

  reacted(label: string, secondsSinceEvent: number): void {
    this.messagesReacted.inc({ label });
    this.reactionLatency.observe(secondsSinceEvent);
  }

  chatReplied(timing: { firstTokenSeconds?: number; tokensPerSecond?: number }): void {
    this.chatReplies.inc();
    if (timing.firstTokenSeconds !== undefined) this.chatFirstToken.observe(timing.firstTokenSeconds);
    if (timing.tokensPerSecond !== undefined) this.chatTokenRate.observe(timing.tokensPerSecond);
  }

  /** For the model's `onPass`: every forward pass, once it returned. */
  readonly observePass = (pass: PassReport): void => {
    this.modelPasses.inc();
    const sentiment = pass.classifications.sentiment ?? 0;
    if (sentiment === 0) return;
    this.sentimentPasses.inc();
    this.sentimentClassifications.inc(sentiment);
    this.sentimentPassDuration.observe(pass.durationMs / 1000);
  };

  /** For the server runtime's `onRequest`: every request to the model server, once it ended. */
  readonly observeServerRequest = (report: ServerRequestObservation): void => {
    if (report.problem === undefined) {
      this.serverRequestSeconds.observe({ kind: report.kind }, report.durationMs / 1000);
    } else {
      this.serverErrors.inc({ cause: report.problem, kind: report.kind });
    }
  };

  gatewayReconnected(): void {
    this.gatewayReconnects.inc();
  }

  gatewayResumed(): void {
    this.gatewayResumes.inc();
  }

  moderationChecked(label: string): void {
    this.moderationChecks.inc({ label: slug(label) });
  }

  /** A moderation check not run: the model was not ready. */
  moderationSkipped(reason: string): void {
    this.moderationChecksSkipped.inc({ reason: slug(reason) });
  }

  /** A moderation check the scheduler dropped: counted apart from reactions, which are shed first. */
  moderationShed(reason: string): void {
    this.moderationChecksShed.inc({ reason: slug(reason.replace(/^shed: /, "")) });
  }

  moderationAlert(outcome: "live" | "dry-run" | "capped"): void {
    this.moderationAlerts.inc({ outcome });
  }

  restRateLimitHit(): void {
    this.restRateLimited.inc();
  }

  private counter(name: string, help: string): Counter {
    return new Counter({ name, help, registers: [this.registry] });
  }
}

/**
 * Keeps a counter level with a total that something else counts (the model's cache hits, the store's errors):
 * each scrape adds what the total gained since the last one.
 */
function totalFollower() {
  const counted = new Map<string, number>();
  return <T extends string>(counter: Counter<T>, labels: Partial<Record<T, string>>, total: number) => {
    const key = JSON.stringify(labels);
    const before = counted.get(key) ?? 0;
    if (total <= before) return;
    counter.inc(labels, total - before);
    counted.set(key, total);
  };
}

/** A reason as a label value: "outside the reaction share" → outside_the_reaction_share. */
function slug(reason: string): string {
  return (
    reason
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "_")
      .replace(/^_|_$/g, "") || "unknown"
  );
}
