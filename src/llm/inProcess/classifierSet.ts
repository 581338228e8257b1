import type { ChatWrapper, Llama, LlamaContextSequence, LlamaModel } from "node-llama-cpp";
import type { SentimentLabel } from "../../platform/sentimentLabels.js";
import type { Prompts } from "../../prompts/prompts.js";
import { isLabelTask, renderTaskTurns, type Task } from "../../tasks/tasks.js";
import { ClassifierPool } from "./classifierLane.js";
import { LabelClassifier } from "./labelClassifier.js";
import { createSentimentClassifier } from "./sentiment.js";

/** The sequences the classifiers run on: fixed when the context is created, reused by every reload. */
export interface ClassifierSequences {
  readonly llama: Llama;
  readonly model: LlamaModel;
  /** The chat wrapper node-llama-cpp chose for the model: it renders every classifier's prompt. */
  readonly chatWrapper: ChatWrapper;
  readonly sentiment: readonly LlamaContextSequence[];
  /** One per label task that was loaded with the context. */
  readonly tasks: readonly LlamaContextSequence[];
}

/** The sentiment lane and one lane per label task, each over its cached prompt prefix. */
export interface Classifiers {
  readonly sentiment: ClassifierPool<SentimentLabel>;
  readonly tasks: ReadonlyMap<string, ClassifierPool<string>>;
  /** Label tasks that found no sequence: the context was sized for fewer, and only a restart makes room. */
  readonly withoutSequence: readonly string[];
}

/**
 * Evaluates every classifier's prompt prefix into its sequences. The first sentiment sequence is evaluated and
 * the others copy its state; a sequence that held another prefix is cleared first (see LabelClassifier).
 */
export async function buildClassifiers(
  sequences: ClassifierSequences,
  prompts: Prompts,
  tasks: readonly Task[],
  /** Tasks that held a sequence before (a reload): they are given one first. */
  served: readonly string[] = [],
): Promise<Classifiers> {
  const { llama, model, chatWrapper } = sequences;
  const [firstSequence, ...otherSequences] = sequences.sentiment;
  if (!firstSequence) throw new Error("at least one sentiment sequence is needed");
  const first = await createSentimentClassifier({
    llama,
    model,
    sequence: firstSequence,
    chatWrapper,
    prompts,
  });
  const sentiment = new ClassifierPool("sentiment", [first, ...(await first.replicate(otherSequences))]);
  const lanes = new Map<string, ClassifierPool<string>>();
  const withoutSequence: string[] = [];
  const free = [...sequences.tasks];
  const labelTasks = tasks.filter(isLabelTask);
  const rank = (task: Task) => (served.includes(task.name) ? 0 : 1);
  for (const task of [...labelTasks].sort((a, b) => rank(a) - rank(b))) {
    const sequence = free.shift();
    if (!sequence) {
      withoutSequence.push(task.name);
      continue;
    }
    const labels = task.output.labels;
    const classifier = await LabelClassifier.create({
      llama,
      model,
      sequence,
      chatWrapper,
      labels,
      tieBreak: labels[0] ?? "",
      renderTurns: (input) => renderTaskTurns(task, input),
    });
    lanes.set(task.name, new ClassifierPool(`task:${task.name}`, [classifier]));
  }
  return { sentiment, tasks: lanes, withoutSequence };
}
