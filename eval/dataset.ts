import { readFileSync } from "node:fs";
import { z } from "zod";
import { SENTIMENT_LABELS } from "../src/sentimentLabels.js";

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

/** Reads the labelled set, validating every line; a bad line names its number. */
export function loadDataset(split: Split = "dev", path: URL | string = DATASET_PATH): EvalExample[] {
  const lines = readFileSync(path, "utf8").split("\n");
  const examples: EvalExample[] = [];
  lines.forEach((line, index) => {
    if (line.trim() === "") return;
    const parsed = exampleSchema.safeParse(JSON.parse(line));
    if (!parsed.success)
      throw new Error(`sentiment.jsonl line ${index + 1}: ${parsed.error.issues[0]?.message}`);
    examples.push(parsed.data);
  });
  return split === "all" ? examples : examples.filter((example) => example.split === split);
}
