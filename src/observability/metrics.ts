import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";
import type { PassReport } from "../llm/llm.js";
import type { ServerProblem } from "../platform/errors.js";
import {
  type MetricSources,
  type ModelInfo,
  registerScrapedMetrics,
  type Watched,
} from "./scrapedMetrics.js";

export type { MetricSources, ModelInfo } from "./scrapedMetrics.js";

/*
 * The Prometheus metrics of one bot process, on a registry of its own (never prom-client's global one). Events
 * are counted where they happen, through the methods below; what the model and the store already count is read
 * when Prometheus scrapes, through the sources given to `watch` (scrapedMetrics.ts). Every name is in
 * docs/operations.md and in the Grafana dashboard in deploy/.
 */

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
  private watched: Watched | undefined;

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

  /**
   * `processMetrics` adds prom-client's process and Node.js metrics (memory, event-loop delay, GC): they sample
   * all the time, so a process that serves no /metrics goes without them.
   */
  constructor(options: { readonly processMetrics?: boolean } = {}) {
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    registerScrapedMetrics(this.registry, () => this.watched);
  }

  /** Starts reading the model's and the store's own counts at every scrape. */
  watch(sources: MetricSources, model: ModelInfo): void {
    this.watched = { sources, model: { threads: model.threads } };
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

/** A reason as a label value: "outside the reaction share" → outside_the_reaction_share. */
function slug(reason: string): string {
  return (
    reason
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "_")
      .replace(/^_|_$/g, "") || "unknown"
  );
}
