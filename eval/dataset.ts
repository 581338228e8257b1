import { readFileSync } from "node:fs";
import { z } from "zod";
import { SENTIMENT_LABELS } from "../src/platform/sentimentLabels.js";

const exampleSchema = z.object({
  id: z.number().int().positive(),
  /** Lines that translate or paraphrase each other share a pair id, and always the same split. */
  pair: z.string().regex(/^p\d+$/),
  lang: z.enum(["en", "zh"]),
  split: z.enum(["dev", "holdout"]),
  label: z.enum(SENTIMENT_LABELS),
  text: z.string().min(1),
  sarcasm: z.boolean(),
  tags: z.array(z.string()),
});

export type EvalExample = z.infer<typeof exampleSchema>;
export type Split = "dev" | "holdout" | "all";

export const DATASET_PATH = new URL("./sentiment.jsonl", import.meta.url);

/** Reads the sentiment labelled set, validating every line. */
export function loadDataset(split: Split = "dev", path: URL | string = DATASET_PATH): EvalExample[] {
  return readLabelledSet(path, "sentiment.jsonl", exampleSchema, split);
}

/** Reads a JSON-lines labelled set, validating every line (a bad line names its number), and keeps one split. */
function readLabelledSet<T extends { split: "dev" | "holdout" }>(
  path: URL | string,
  name: string,
  schema: z.ZodType<T>,
  split: Split,
): T[] {
  const examples: T[] = [];
  readFileSync(path, "utf8")
    .split("\n")
    .forEach((line, index) => {
      if (line.trim() === "") return;
      const parsed = schema.safeParse(JSON.parse(line));
      if (!parsed.success) throw new Error(`${name} line ${index + 1}: ${parsed.error.issues[0]?.message}`);
      examples.push(parsed.data);
    });
  return split === "all" ? examples : examples.filter((example) => example.split === split);
}

const toxicitySchema = z.object({
  id: z.number().int().positive(),
  pair: z.string().regex(/^p\d+$/),
  lang: z.enum(["en", "zh"]),
  split: z.enum(["dev", "holdout"]),
  label: z.enum(["ok", "insult", "threat", "harassment", "spam"]),
  text: z.string().min(1),
  tags: z.array(z.string()),
});

export type ToxicityExample = z.infer<typeof toxicitySchema>;

/** Moderation's labelled set: the toxicity task's labels, in English and Chinese, split by pair like sentiment's. */
export const TOXICITY_DATASET_PATH = new URL("./toxicity.jsonl", import.meta.url);

export function loadToxicityDataset(
  split: Split = "dev",
  path: URL | string = TOXICITY_DATASET_PATH,
): ToxicityExample[] {
  return readLabelledSet(path, "toxicity.jsonl", toxicitySchema, split);
}
