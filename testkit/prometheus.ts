import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { waitUntil } from "./waitUntil.js";

/** One metric family as the Prometheus text parser gives it (prom2json's shape). */
export interface MetricFamily {
  readonly name: string;
  readonly type: string;
  readonly metrics: ReadonlyArray<{
    readonly value?: string;
    readonly count?: string;
    readonly sum?: string;
    readonly buckets?: Readonly<Record<string, string>>;
    readonly labels?: Readonly<Record<string, string>>;
  }>;
}

/** A scraped /metrics page, parsed by a real Prometheus text-format parser. */
export class Scrape {
  constructor(readonly families: readonly MetricFamily[]) {}

  family(name: string): MetricFamily {
    const family = this.families.find((candidate) => candidate.name === name);
    if (!family) throw new Error(`no metric ${name} in the scrape`);
    return family;
  }

  /** The sum of the samples of a counter or gauge whose labels include `labels`. */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.matching(name, labels).reduce((sum, metric) => sum + Number(metric.value ?? 0), 0);
  }

  /** A histogram's observation count, over the samples whose labels include `labels`. */
  count(name: string, labels: Record<string, string> = {}): number {
    return this.matching(name, labels).reduce((sum, metric) => sum + Number(metric.count ?? 0), 0);
  }

  labelsOf(name: string): Array<Readonly<Record<string, string>>> {
    return this.family(name).metrics.map((metric) => metric.labels ?? {});
  }

  private matching(name: string, labels: Record<string, string>) {
    return this.family(name).metrics.filter((metric) =>
      Object.entries(labels).every(([key, value]) => metric.labels?.[key] === value),
    );
  }
}

export async function scrape(baseUrl: string): Promise<Scrape> {
  const response = await fetch(`${baseUrl}/metrics`);
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
  return new Scrape(parsePrometheusTextFormat(await response.text()) as MetricFamily[]);
}

/** Scrapes until `done` holds for a scrape (at most `timeoutMs`), and returns that scrape. */
export async function scrapeUntil(
  baseUrl: string,
  done: (scrape: Scrape) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<Scrape> {
  let last: Scrape | undefined;
  await waitUntil(
    async () => {
      last = await scrape(baseUrl);
      return done(last);
    },
    { timeoutMs, failure: () => `metrics never showed ${what}` },
  );
  if (!last) throw new Error("no scrape");
  return last;
}
