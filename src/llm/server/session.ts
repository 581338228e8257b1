import { ServerRequestError } from "../../platform/errors.js";
import type { Logger } from "../../platform/logger.js";
import { SENTIMENT_LABELS, type SentimentLabel } from "../../platform/sentimentLabels.js";
import { type ChatTurn, type Prompts, renderSentimentTurns } from "../../prompts/prompts.js";
import { isLabelTask, renderTaskTurns, type Task } from "../../tasks/tasks.js";
import type { ChatCompletion, JobPriority, LabelMethod, LabelResult } from "../llm.js";
import type { CompletionRequest, LabelReading, LabelRequest, ServerBackend, ServerFacts } from "./backend.js";
import { ChatTemplate } from "./chatTemplate.js";
import { controlTokenNeutraliser } from "./controlTokens.js";
import {
  LabelsUnreadableError,
  type LabelVotes,
  labelResultFromReading,
  readingIsEmpty,
  resolveLabelVotes,
} from "./serverLabels.js";
import { type LabelPrompt, ServerPrompts } from "./serverPrompts.js";

/*
 * What one good contact with the server teaches the bot, learned again on every reconnect and prompt reload: the
 * backend (its kind may have changed behind an "auto" address), the facts, the prompt form, each label set's vote
 * tokens and cached prefix, and the label method. The result-cache identity is built from it.
 */

/** One label set (sentiment, or a label task) as the server reads it. */
export interface LabelLane<L extends string> {
  readonly votes: LabelVotes<L>;
  readonly prompt: LabelPrompt;
}

export interface ServerSession {
  readonly backend: ServerBackend;
  readonly facts: ServerFacts;
  /** The backend's tokenizer, reporting each request: undefined where the server does not tokenise. */
  readonly tokenizer: ServerBackend["tokenizer"];
  readonly prompts: ServerPrompts;
  readonly sentiment: LabelLane<SentimentLabel>;
  /** Each label task's lane, or why the served model cannot read its labels. */
  readonly tasks: ReadonlyMap<string, LabelLane<string> | LabelsUnreadableError>;
  readonly method: LabelMethod;
  readonly maxInFlight: number;
  /** Names the kind, the method, the model and the sentiment prompt: see Llm.resultIdentity. */
  readonly identity: readonly (string | number)[];
}

export interface SessionInputs {
  /** The backend for this contact: for "auto", detected again each time. */
  readonly backend: (signal: AbortSignal) => Promise<ServerBackend>;
  /** The LLM_SERVER_CHAT_TEMPLATE file's text: it wins over the server's own template when set. */
  readonly templateFile: { readonly path: string; readonly text: string } | undefined;
  /** LLM_SERVER_MAX_IN_FLIGHT, when set. */
  readonly maxInFlight: number | undefined;
  /** Told what goes wrong without failing the session. */
  readonly logger: Logger;
  readonly prompts: Prompts;
  readonly tasks: readonly Task[];
  /** Wraps a request so that it is reported (metrics). */
  readonly reported: <T>(kind: "probe" | "tokenize", work: () => Promise<T>) => Promise<T>;
}

/**
 * Requests in flight when neither LLM_SERVER_MAX_IN_FLIGHT nor the server says (llama-server's total_slots). vLLM
 * batches dozens at once; Ollama serves one request at a time unless OLLAMA_NUM_PARALLEL says more; an
 * OpenAI-compatible API (LM Studio, a hosted one) is given a few.
 */
export const DEFAULT_MAX_IN_FLIGHT: Readonly<Record<ServerFacts["kind"], number>> = {
  "llama.cpp": 4,
  vllm: 16,
  ollama: 1,
  openai: 4,
};

/** The message a new session's first classification reads: it checks that probabilities come back. */
const CHECK_MESSAGE = "hello";

/**
 * How many classifications a new session runs beside its check, all at once and each on a message of its own: on
 * llama-server, one for each further place in flight. llama-server keeps each slot's last prompt in its host prompt
 * cache, hands a cached prompt to one slot at a time, and saves an idle slot's prompt only when no saved one holds
 * it already. So a burst that starts with more reactions than the copies of the sentiment prefix kept there
 * evaluates the prefix again on each further slot, all in one decode with any mention then starting, whose first
 * token waits that whole pass (measured in `npm run bench`). Distinct messages leave distinct copies. llama-server
 * takes the first request alone and the rest in its next step, where one of them may reuse the first one's slot:
 * so this leaves a copy for every place background work may take (all but one). Other servers share a cached
 * prefix between requests (vLLM), or serve one request at a time (Ollama's default).
 */
function extraCopies(kind: ServerFacts["kind"], maxInFlight: number): number {
  return kind === "llama.cpp" ? maxInFlight - 1 : 0;
}

export async function learnSession(inputs: SessionInputs, signal: AbortSignal): Promise<ServerSession> {
  const backend = await inputs.backend(signal);
  const facts = await inputs.reported("probe", () => backend.probe(signal));
  const tokenizer = reportingTokenizer(backend.tokenizer, inputs.reported);
  const template = chatTemplate(facts, inputs.templateFile);
  const neutralise = controlTokenNeutraliser(
    [facts.bosToken, facts.eosToken].filter((token): token is string => token !== undefined),
  );
  const prompts = ServerPrompts.choose({ promptForms: backend.promptForms, tokenizer }, template, neutralise);
  const lanes = await resolveLanes(prompts, tokenizer, inputs.prompts, inputs.tasks, signal);
  const maxInFlight = inputs.maxInFlight ?? facts.slots ?? DEFAULT_MAX_IN_FLIGHT[facts.kind];
  // Classifications before the bot is called ready: a server that returns no probabilities cannot classify (the
  // first one checks), and they leave the sentiment prefix in the server's prompt cache for the first reactions.
  const [reading, ...extras] = await classifyAtOnce(
    [
      CHECK_MESSAGE,
      ...Array.from({ length: extraCopies(facts.kind, maxInFlight) }, (_, i) => `${CHECK_MESSAGE} ${i + 2}`),
    ],
    lanes.sentiment,
    (request) => inputs.reported("probe", () => backend.readLabels(request)),
    signal,
  );
  if (reading?.status === "rejected") throw reading.reason;
  if (!reading || readingIsEmpty(reading.value)) {
    throw new ServerRequestError(
      "unsupported",
      "a test classification",
      "the model server returned no probabilities for any sentiment label, and classification needs them: " +
        "reactions, moderation and the neutral threshold all rest on a confidence",
    );
  }
  // The others only save work later: one that fails is logged and the session goes on, so a slow server (a large
  // model on a CPU, past the request deadline) starts all the same.
  signal.throwIfAborted();
  const failed = extras.flatMap((outcome) => (outcome.status === "rejected" ? [outcome.reason] : []));
  if (failed.length > 0) {
    inputs.logger.warn(
      { err: failed[0], failed: failed.length, of: extras.length },
      "classifications that leave the sentiment prefix in the server's prompt cache failed; a burst's first reactions may evaluate it again",
    );
  }
  return {
    backend,
    facts,
    tokenizer,
    prompts,
    ...lanes,
    method: reading.value.method,
    maxInFlight,
    identity: ["server", facts.kind, reading.value.method, facts.model, ...lanes.sentiment.prompt.identity],
  };
}

/**
 * Classifies each message on the sentiment lane, every request sent in the same tick once all prompts are built:
 * llama-server then takes all but the first in one step, each on a slot of its own.
 */
async function classifyAtOnce(
  messages: readonly string[],
  lane: LabelLane<SentimentLabel>,
  readLabels: (request: LabelRequest) => Promise<LabelReading>,
  signal: AbortSignal,
): Promise<PromiseSettledResult<LabelReading>[]> {
  const built = await Promise.all(messages.map((message) => lane.prompt.forMessage(message, signal)));
  return Promise.allSettled(
    built.map(({ prompt }) => readLabels({ prompt, voteTokens: lane.votes.voteTokens, signal })),
  );
}

/** Each label set's vote tokens and cached prefix, for the prompts and tasks now loaded. */
async function resolveLanes(
  prompts: ServerPrompts,
  tokenizer: ServerBackend["tokenizer"],
  loaded: Prompts,
  tasks: readonly Task[],
  signal: AbortSignal,
): Promise<Pick<ServerSession, "sentiment" | "tasks">> {
  const sentiment = resolveLane(
    prompts,
    tokenizer,
    "sentiment",
    SENTIMENT_LABELS,
    "neutral",
    signal,
    (message) => renderSentimentTurns(loaded, message),
  );
  const labelTasks = tasks.filter(isLabelTask);
  const taskLanes = labelTasks.map((task) =>
    unlessUnreadable(
      resolveLane(
        prompts,
        tokenizer,
        `task:${task.name}`,
        task.output.labels,
        task.output.labels[0] ?? "",
        signal,
        (input) => renderTaskTurns(task, input),
      ),
    ),
  );
  const [sentimentLane, ...resolved] = await Promise.all([sentiment, ...taskLanes]);
  const byName = new Map<string, LabelLane<string> | LabelsUnreadableError>();
  labelTasks.forEach((task, index) => {
    const lane = resolved[index];
    if (lane) byName.set(task.name, lane);
  });
  return { sentiment: sentimentLane as LabelLane<SentimentLabel>, tasks: byName };
}

/**
 * A label task the served model cannot read (two labels share a first token) is that task's problem, not the
 * model's: in-process it falls back to constrained decoding, which a server's one-token request cannot do, so the
 * task alone refuses to run and every other label set still works. Sentiment has no such way out: its unreadable
 * labels make the model not ready.
 */
async function unlessUnreadable<T>(lane: Promise<T>): Promise<T | LabelsUnreadableError> {
  try {
    return await lane;
  } catch (error) {
    if (error instanceof LabelsUnreadableError) return error;
    throw error;
  }
}

async function resolveLane<L extends string>(
  prompts: ServerPrompts,
  tokenizer: ServerBackend["tokenizer"],
  name: string,
  labels: readonly L[],
  tieBreak: L,
  signal: AbortSignal,
  renderTurns: Parameters<ServerPrompts["labelPrompt"]>[0],
): Promise<LabelLane<L>> {
  const [votes, prompt] = await Promise.all([
    resolveLabelVotes(name, labels, tieBreak, tokenizer, signal),
    prompts.labelPrompt(renderTurns, signal),
  ]);
  return { votes, prompt };
}

function chatTemplate(facts: ServerFacts, file: SessionInputs["templateFile"]): ChatTemplate | undefined {
  const tokens = { bosToken: facts.bosToken, eosToken: facts.eosToken };
  if (file) return new ChatTemplate({ template: file.text, source: file.path, ...tokens });
  if (facts.chatTemplate === undefined) return undefined;
  return new ChatTemplate({ template: facts.chatTemplate, source: `the ${facts.kind} server`, ...tokens });
}

function reportingTokenizer(
  tokenizer: ServerBackend["tokenizer"],
  reported: SessionInputs["reported"],
): ServerBackend["tokenizer"] {
  if (!tokenizer) return undefined;
  return {
    tokenize: (text, special, signal) =>
      reported("tokenize", () => tokenizer.tokenize(text, special, signal)),
    detokenize: (tokens, signal) => reported("tokenize", () => tokenizer.detokenize(tokens, signal)),
  };
}

type Reported = <T>(kind: "classify" | "chat", work: () => Promise<T>) => Promise<T>;

/** One classification: the message tokenised (or cut by estimate) between the lane's cached prefix and suffix. */
export async function classifyOnSession<L extends string>(
  session: ServerSession,
  lane: LabelLane<L>,
  text: string,
  signal: AbortSignal,
  reported: Reported,
  /** For a server that schedules by priority (vLLM with LLM_SERVER_PRIORITIES=on). */
  priority?: JobPriority,
): Promise<LabelResult<L>> {
  const { prompt, measure } = await lane.prompt.forMessage(text, signal);
  const voteTokens = lane.votes.voteTokens;
  const reading = await reported("classify", () =>
    session.backend.readLabels({ prompt, voteTokens, signal, ...(priority ? { priority } : {}) }),
  );
  return labelResultFromReading(lane.votes, reading, measure);
}

export type CompletionSettings = Pick<
  CompletionRequest,
  "maxTokens" | "temperature" | "onText" | "conversationId" | "priority"
>;

/**
 * One generation, streamed through `onText`. The server dying mid-reply rejects here, after `onText` was given the
 * reply so far: the pipeline keeps that text and marks the reply cut short, as for an in-process reply that failed.
 */
export async function completeOnSession(
  session: ServerSession,
  turns: readonly ChatTurn[],
  settings: CompletionSettings,
  signal: AbortSignal,
  reported: Reported,
): Promise<ChatCompletion> {
  const prompt = await session.prompts.build(turns, signal);
  const result = await reported("chat", () => session.backend.complete({ ...settings, prompt, signal }));
  return {
    text: result.text.trim(),
    stopReason: result.stopReason,
    generatedTokens: result.generatedTokens,
    evaluatedPromptTokens: result.evaluatedPromptTokens,
  };
}
