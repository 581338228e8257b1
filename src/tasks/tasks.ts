import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { z } from "zod";
import { MoodbotError } from "../platform/errors.js";
import type { ChatTurn } from "../prompts/prompts.js";

/**
 * Tasks defined by prompt files: each JSON file in prompts/tasks/ is a name, a description, an output kind (a label
 * set, classified in one forward pass like sentiment, or free text with a token cap) and a prompt template. Each
 * becomes a slash command, in the bot and in deploy-commands, with no TypeScript written, unless its file says
 * `"command": false`.
 */

const INPUT_SLOT = "{{input}}";

const taskSchema = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9_-]{1,32}$/, "must be 1 to 32 lowercase letters, digits, - or _ (Discord's rule)"),
    description: z.string().min(1).max(100),
    descriptionZh: z.string().min(1).max(100).optional(),
    output: z.discriminatedUnion("kind", [
      z.object({
        kind: z.literal("labels"),
        labels: z
          .array(z.string().regex(/^[a-z][a-z0-9-]{0,30}$/, "labels are lowercase words, like question"))
          .min(2)
          .max(25),
      }),
      z.object({ kind: z.literal("text"), maxTokens: z.number().int().min(1).max(1000) }),
    ]),
    input: z.discriminatedUnion("kind", [
      z.object({ kind: z.literal("text") }),
      z.object({
        kind: z.literal("channel"),
        defaultCount: z.number().int().min(1).max(100),
        maxCount: z.number().int().min(1).max(100),
      }),
    ]),
    system: z.string().min(1),
    examples: z.array(z.object({ input: z.string().min(1), output: z.string().min(1) })).default([]),
    template: z.string().includes(INPUT_SLOT, { message: `must contain ${INPUT_SLOT} where the input goes` }),
    /** False keeps the task off the slash-command list: the bot runs it itself (moderation's toxicity task). */
    command: z.boolean().default(true),
  })
  .strict();

export type Task = z.infer<typeof taskSchema> & { readonly file: string };
export type LabelTask = Task & { readonly output: { readonly kind: "labels"; readonly labels: string[] } };

export function isLabelTask(task: Task): task is LabelTask {
  return task.output.kind === "labels";
}

/** A task file is invalid; the message names the file and the problem. */
export class TaskFileError extends MoodbotError {
  override readonly name = "TaskFileError";
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`The task file ${file} is invalid: ${problem}. Fix the file, or remove it to drop the command.`);
  }
}

/**
 * Loads and checks every task file, in name order. Throws TaskFileError for the first bad one. `reservedNames` are
 * the names the bot's own commands take (from the command registry), which no task may reuse.
 */
export function loadTasks(directory: string, reservedNames: Iterable<string> = []): Task[] {
  const reserved = new Set(reservedNames);
  let files: string[];
  try {
    files = readdirSync(directory).filter((file) => file.endsWith(".json"));
  } catch {
    return [];
  }
  const tasks: Task[] = [];
  for (const file of files.sort()) {
    const path = join(directory, file);
    const shown = relative(process.cwd(), path) || path;
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, "utf8"));
    } catch (error) {
      throw new TaskFileError(
        shown,
        `it is not valid JSON (${error instanceof Error ? error.message : String(error)})`,
      );
    }
    const parsed = taskSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new TaskFileError(
        shown,
        `${issue?.path.join(".") || "the file"} ${issue?.message ?? "is invalid"}`,
      );
    }
    const task = { ...parsed.data, file: shown };
    if (reserved.has(task.name) || tasks.some((other) => other.name === task.name)) {
      throw new TaskFileError(shown, `the name ${task.name} is already taken by another command`);
    }
    if (task.output.kind === "labels") {
      const labels = task.output.labels;
      if (new Set(labels).size !== labels.length) throw new TaskFileError(shown, "a label is listed twice");
      const stray = task.examples.find((example) => !labels.includes(example.output));
      if (stray)
        throw new TaskFileError(shown, `the example output "${stray.output}" is not one of the labels`);
    }
    if (task.input.kind === "channel" && task.input.defaultCount > task.input.maxCount) {
      throw new TaskFileError(shown, "input.defaultCount is larger than input.maxCount");
    }
    tasks.push(task);
  }
  return tasks;
}

/** A task's conversation for one input: instruction, few-shot turns, then the input as plain text. */
export function renderTaskTurns(task: Task, input: string): ChatTurn[] {
  const fill = (text: string) => task.template.split(INPUT_SLOT).join(text);
  const turns: ChatTurn[] = [{ role: "system", text: task.system }];
  for (const example of task.examples) {
    turns.push({ role: "user", text: fill(example.input) }, { role: "assistant", text: example.output });
  }
  turns.push({ role: "user", text: fill(input) });
  return turns;
}
