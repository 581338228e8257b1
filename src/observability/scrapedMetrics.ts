import { Counter, Gauge, type Registry } from "prom-client";
import type { CacheStats, ModelReadiness, ModelRuntimeInfo, QueueDepth } from "../llm/llm.js";

/*
 * The metrics read when Prometheus scrapes rather than counted as events happen: what the model and the store
 * already count or know (queue depth, cache hits, the model in use, readiness, the store's state), read from the
 * sources given to Metrics.watch. Until then each one is left out of the scrape, or stays at zero.
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

/** What Metrics.watch was given; undefined before. */
export interface Watched {
  readonly sources: MetricSources;
  readonly model: ModelInfo;
}

type CatchUp = ReturnType<typeof totalFollower>;
/** Reads what Metrics.watch was given, at each scrape. */
type ReadWatched = () => Watched | undefined;

/** Registers every scrape-time metric on the registry; each reads `watched()` at every scrape. */
export function registerScrapedMetrics(registry: Registry, watched: ReadWatched): void {
  // One follower for every counter kept level with an outside total: each series is keyed by its labels.
  const catchUp = totalFollower();
  registerModelMetrics(registry, watched, catchUp);
  registerStoreMetrics(registry, watched, catchUp);
}

function registerModelMetrics(registry: Registry, watched: ReadWatched, catchUp: CatchUp): void {
  new Gauge({
    name: "moodbot_model_queue_depth",
    help: "Jobs waiting for the model, by priority (interactive commands, background reactions, chat).",
    labelNames: ["priority"] as const,
    registers: [registry],
    collect() {
      const depth = watched()?.sources.model.queueDepth;
      if (!depth) return;
      for (const [priority, value] of Object.entries(depth)) this.set({ priority }, value);
    },
  });
  const cacheHits = new Counter({
    name: "moodbot_result_cache_hits_total",
    help: "Sentiment results served from a cache with no model work, by cache (local or shared through Redis).",
    labelNames: ["cache"] as const,
    registers: [registry],
    collect() {
      const stats = watched()?.sources.model.cacheStats;
      if (!stats) return;
      catchUp(this, { cache: "local" }, stats.hits);
      catchUp(this, { cache: "shared" }, stats.shared.hits);
    },
  });
  cacheHits.inc({ cache: "local" }, 0);
  registerModelInfo(registry, watched);
  new Gauge({
    name: "moodbot_model_up",
    help: "1 while the model can take work, 0 while it cannot (a model server unreachable, refusing the key, or unusable).",
    registers: [registry],
    collect() {
      const model = watched()?.sources.model;
      if (model) this.set(model.readiness.ready ? 1 : 0);
    },
  });
  new Gauge({
    name: "moodbot_model_server_in_flight",
    help: "Requests to the model server running now.",
    registers: [registry],
    collect() {
      const model = watched()?.sources.model;
      // In-process work runs in passes, not requests: the gauge counts a server's requests only.
      if (model?.inFlight !== undefined && model.runtime.kind !== "in-process") this.set(model.inFlight);
    },
  });
}

function registerModelInfo(registry: Registry, watched: ReadWatched): void {
  new Gauge({
    name: "moodbot_model_info",
    help: "The model in use: always 1, with where it runs (runtime: in-process or the server's kind), how labels are read (method), the model, the backend and the in-process threads as labels.",
    labelNames: ["runtime", "method", "model", "backend", "threads"] as const,
    registers: [registry],
    collect() {
      const seen = watched();
      if (!seen) return;
      const model = seen.sources.model;
      // A reconnect may bring another model: only the one in use now is 1.
      this.reset();
      const { kind, method, model: name } = model.runtime;
      const threads = seen.model.threads === undefined ? "" : String(seen.model.threads);
      this.set({ runtime: kind, method, model: name, backend: model.backend, threads }, 1);
    },
  });
}

function registerStoreMetrics(registry: Registry, watched: ReadWatched, catchUp: CatchUp): void {
  new Counter({
    name: "moodbot_store_errors_total",
    help: "Store reads and writes that failed (history is then served from memory and buffered).",
    registers: [registry],
    collect() {
      const store = watched()?.sources.store;
      if (store) catchUp(this, {}, store.errors);
    },
  });
  new Gauge({
    name: "moodbot_store_buffered_turns",
    help: "History turns held in memory while the store is unreachable.",
    registers: [registry],
    collect() {
      const store = watched()?.sources.store;
      if (store) this.set(store.bufferedTurns);
    },
  });
  new Gauge({
    name: "moodbot_store_up",
    help: "1 while the store answers, 0 while it is unreachable (the bot keeps serving from memory).",
    registers: [registry],
    collect() {
      const store = watched()?.sources.store;
      if (store) this.set(store.reachable ? 1 : 0);
    },
  });
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
