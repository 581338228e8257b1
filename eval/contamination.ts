import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseSentimentExamples } from "../src/prompts/prompts.js";

/*
 * Whether an eval line leaks into the prompts: a line equal to, containing, contained in, or nearly equal to a
 * few-shot example would be scored on an answer the prompt already shows the model. "Nearly equal" is a Jaccard
 * similarity of 0.5 or more between the two texts' character 5-grams, after normalisation.
 */

export const NEAR_COPY_JACCARD = 0.5;
const GRAM = 5;
/** Containment is only meaningful for texts this long (normalised): "ok" is inside "broke". */
const MIN_CONTAINED_CHARS = 10;

/** Case and width folded, runs of spaces made one, punctuation, symbols and emoji dropped: the wording. */
export function normaliseForComparison(text: string): string {
  return text
    .normalize("NFKC")
    .toLowerCase()
    .replace(/[\p{P}\p{S}]/gu, "")
    .replace(/\s+/g, " ")
    .trim();
}

function grams(text: string): Set<string> {
  const chars = [...text];
  const set = new Set<string>();
  for (let i = 0; i + GRAM <= chars.length; i++) set.add(chars.slice(i, i + GRAM).join(""));
  return set;
}

export function jaccard(a: string, b: string): number {
  const left = grams(a);
  const right = grams(b);
  if (left.size === 0 || right.size === 0) return 0;
  let shared = 0;
  for (const gram of left) if (right.has(gram)) shared++;
  return shared / (left.size + right.size - shared);
}

/** How `line` overlaps `example`, or undefined when it does not. */
export function overlap(line: string, example: string): "equal" | "contains" | "near copy" | undefined {
  const a = normaliseForComparison(line);
  const b = normaliseForComparison(example);
  if (a === "" || b === "") return undefined;
  if (a === b) return "equal";
  const [shorter, longer] = a.length <= b.length ? [a, b] : [b, a];
  if ([...shorter].length >= MIN_CONTAINED_CHARS && longer.includes(shorter)) return "contains";
  return jaccard(a, b) >= NEAR_COPY_JACCARD ? "near copy" : undefined;
}

/** Every text the prompts show the model as an example: the sentiment few-shot lines and each task's examples. */
export function promptExamples(promptsDir: string): Array<{ source: string; text: string }> {
  const examples = parseSentimentExamples(
    readFileSync(join(promptsDir, "sentiment-examples.txt"), "utf8"),
  ).map((example) => ({ source: "sentiment-examples.txt", text: example.message }));
  const tasksDir = join(promptsDir, "tasks");
  for (const file of readdirSync(tasksDir).filter((name) => name.endsWith(".json"))) {
    const task = JSON.parse(readFileSync(join(tasksDir, file), "utf8")) as {
      examples?: Array<{ input: string }>;
    };
    for (const example of task.examples ?? [])
      examples.push({ source: `tasks/${file}`, text: example.input });
  }
  return examples;
}
