import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { Metrics } from "../../src/observability/metrics.js";
import { REPO_ROOT } from "../../testkit/botProcess.js";

/** Every series name a text mentions: moodbot's own, and the process and Node.js ones prom-client collects. */
function seriesNames(text: string): Set<string> {
  return new Set(
    [...text.matchAll(/\b((?:moodbot|process|nodejs)_[a-z0-9_]+)/g)]
      .map((match) => match[1] ?? "")
      .map((name) => name.replace(/_(bucket|count|sum)$/, "")),
  );
}

const registered = new Set(new Metrics().registry.getMetricsAsArray().map((metric) => metric.name));
const dashboard = readFileSync(join(REPO_ROOT, "deploy", "grafana-dashboard.json"), "utf8");
const operations = readFileSync(join(REPO_ROOT, "docs", "operations.md"), "utf8");

it("the Grafana dashboard queries only metrics the bot serves, and shows every one of moodbot's own", () => {
  const used = seriesNames(dashboard);
  expect([...used].filter((name) => !registered.has(name))).toEqual([]);
  const own = [...registered].filter((name) => name.startsWith("moodbot_"));
  expect(own.filter((name) => !used.has(name))).toEqual([]);
});

it("docs/operations.md names only metrics the bot serves, and documents every one of moodbot's own", () => {
  const named = seriesNames(operations);
  expect([...named].filter((name) => !registered.has(name))).toEqual([]);
  const own = [...registered].filter((name) => name.startsWith("moodbot_"));
  expect(own.filter((name) => !named.has(name))).toEqual([]);
});
