import { ServerRequestError } from "../../platform/errors.js";
import { SENTIMENT_LABELS, type SentimentLabel } from "../../platform/sentimentLabels.js";
import { type ChatTurn, type Prompts, renderSentimentTurns } from "../../prompts/prompts.js";
import { isLabelTask, renderTaskTurns, type Task } from "../../tasks/tasks.js";
import type { ChatCompletion, JobPriority, LabelMethod, LabelResult } from "../llm.js";
import type { CompletionRequest, ServerBackend, ServerFacts } from "./backend.js";
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
  // One classification before the bot is called ready: a server that returns no probabilities cannot classify,
  // and the request leaves the sentiment prefix in the server's prompt cache for the first reaction.
  const { prompt } = await lanes.sentiment.prompt.forMessage(CHECK_MESSAGE, signal);
  const reading = await inputs.reported("probe", () =>
    backend.readLabels({ prompt, voteTokens: lanes.sentiment.votes.voteTokens, signal }),
  );
  if (readingIsEmpty(reading)) {
    throw new ServerRequestError(
      "unsupported",
      "a test classification",
      "the model server returned no probabilities for any sentiment label, and classification needs them: " +
        "reactions, moderation and the neutral threshold all rest on a confidence",
    );
  }
  const maxInFlight = inputs.maxInFlight ?? facts.slots ?? DEFAULT_MAX_IN_FLIGHT[facts.kind];
  return {
    backend,
    facts,
    tokenizer,
    prompts,
    ...lanes,
    method: reading.method,
    maxInFlight,
    identity: ["server", facts.kind, reading.method, facts.model, ...lanes.sentiment.prompt.identity],
  };
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
