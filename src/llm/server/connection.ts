import { setMaxListeners } from "node:events";
import { errorMessage, ServerRequestError } from "../../platform/errors.js";
import type { Logger } from "../../platform/logger.js";
import type { ModelReadiness } from "../llm.js";
import { ChatTemplateError } from "./chatTemplate.js";
import { LabelsUnreadableError } from "./serverLabels.js";

/*
 * Whether the model server can be used, and what the bot learned from it. A server problem never stops the bot:
 * the connection starts not ready, learns everything again on each good contact (kind, template, context, label
 * tokens, model), and retries with capped backoff while it cannot. One log paragraph per change of cause.
 */

export interface ConnectionOptions<S> {
  readonly logger: Logger;
  /** One contact: probes the server and learns a session from it. Throws what went wrong. */
  readonly learn: (signal: AbortSignal) => Promise<S>;
  /** Told each new session, before the connection reports ready with it. */
  readonly onSession: (session: S) => void;
  /** Describes a session for the log line that says the server is ready again. */
  readonly describe: (session: S) => Record<string, unknown>;
  readonly firstRetryMs?: number;
  readonly maxRetryMs?: number;
}

const FIRST_RETRY_MS = 500;
/** Requests that learning the server may have in flight at once on the connection's signal. */
const LEARNING_LISTENERS = 256;
const MAX_RETRY_MS = 30_000;

/** Why the server cannot be used, sorted so that a change of kind, not of wording, is what gets logged. */
interface Cause {
  readonly kind: string;
  readonly sentence: string;
}

type State<S> =
  | { readonly ready: true; readonly session: S }
  | { readonly ready: false; readonly cause: Cause };

export class Connection<S> {
  private state: State<S> = { ready: false, cause: { kind: "starting", sentence: "not contacted yet" } };
  /** The session of the last good contact: kept while reconnecting, for what may be stale (the context size). */
  private last: S | undefined;
  private attempt: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private loggedCause: string | undefined;
  private readonly lifetime = new AbortController();

  constructor(private readonly options: ConnectionOptions<S>) {
    // Learning the server tokenises every label's spellings at once, each request listening to this one signal:
    // more than Node's default of 10 listeners, and none of them leaks (each request removes its own).
    setMaxListeners(LEARNING_LISTENERS, this.lifetime.signal);
  }

  get readiness(): ModelReadiness {
    const { state } = this;
    return state.ready
      ? { ready: true }
      : { ready: false, cause: state.cause.sentence, problem: state.cause.kind };
  }

  /** The current session, only while ready. */
  get session(): S | undefined {
    return this.state.ready ? this.state.session : undefined;
  }

  get lastSession(): S | undefined {
    return this.last;
  }

  /** The first contact; resolves once it succeeded or failed (a failure schedules the retries). */
  start(): Promise<void> {
    return this.connect();
  }

  /**
   * Learns again now (a prompt reload): waits for an attempt in flight, which may have used the old prompts, then
   * makes its own. Resolves once it succeeded or failed.
   */
  async refresh(): Promise<void> {
    await this.attempt;
    clearTimeout(this.retryTimer);
    await this.connect();
  }

  /**
   * A request found the server gone or the key refused while it was ready: not ready at once, and reconnecting.
   * Anything else a request meets (a timeout, a bad answer) is that request's failure, not the server's state.
   */
  lost(error: ServerRequestError): void {
    if (!this.state.ready || this.lifetime.signal.aborted) return;
    if (error.problem !== "unreachable" && error.problem !== "unauthorized") return;
    this.becomeNotReady(error);
    this.failures = 0;
    void this.connect();
  }

  /** Stops reconnecting and aborts an attempt in flight. */
  close(): void {
    this.lifetime.abort();
    clearTimeout(this.retryTimer);
  }

  private connect(): Promise<void> {
    if (this.lifetime.signal.aborted) return Promise.resolve();
    this.attempt ??= this.tryOnce().finally(() => {
      this.attempt = undefined;
    });
    return this.attempt;
  }

  private async tryOnce(): Promise<void> {
    try {
      const session = await this.options.learn(this.lifetime.signal);
      if (this.lifetime.signal.aborted) return;
      this.options.onSession(session);
      this.becomeReady(session);
    } catch (error) {
      if (this.lifetime.signal.aborted) return;
      this.becomeNotReady(error);
      this.scheduleRetry();
    }
  }

  private becomeReady(session: S): void {
    const wasReady = this.state.ready;
    this.state = { ready: true, session };
    this.last = session;
    this.failures = 0;
    if (!wasReady || this.loggedCause !== undefined) {
      this.options.logger.info(this.options.describe(session), "model server ready");
    }
    this.loggedCause = undefined;
  }

  private becomeNotReady(error: unknown): void {
    const cause = describeFailure(error);
    this.state = { ready: false, cause };
    if (cause.kind === this.loggedCause) return;
    this.loggedCause = cause.kind;
    this.options.logger.warn(
      { err: error, cause: cause.kind },
      `${cause.sentence}. The bot stays up and not ready: reactions are skipped, mentions get a short notice and ` +
        "moderation is paused until the model server can be used again; it is retried with backoff, and this is " +
        "logged again only when the cause changes.",
    );
  }

  /** Bounded: the wait doubles from 0.5 s to 30 s at most, and stops on close. */
  private scheduleRetry(): void {
    const first = this.options.firstRetryMs ?? FIRST_RETRY_MS;
    const delay = Math.min(this.options.maxRetryMs ?? MAX_RETRY_MS, first * 2 ** this.failures);
    this.failures = Math.min(this.failures + 1, 30);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.connect(), delay);
    // A retry alone never keeps a process alive that is otherwise done.
    this.retryTimer.unref();
  }
}

const PROBLEM_SENTENCES: Readonly<Record<ServerRequestError["problem"], string>> = {
  unreachable: "the model server is unreachable",
  unauthorized: "the model server refused the key (unauthorized)",
  timeout: "the model server did not answer in time",
  http: "the model server answered with an error",
  protocol: "the model server's answers cannot be read",
  unsupported: "the model server cannot do what the bot needs",
};

/** One sentence for /readyz: what is wrong, then what the server said (never the key: ServerHttp redacts it). */
export function describeFailure(error: unknown): Cause {
  if (error instanceof ServerRequestError) {
    return { kind: error.problem, sentence: `${PROBLEM_SENTENCES[error.problem]}: ${error.message}` };
  }
  if (error instanceof LabelsUnreadableError) {
    return { kind: "labels unreadable", sentence: `labels unreadable: ${error.message}` };
  }
  if (error instanceof ChatTemplateError) {
    return { kind: "chat template", sentence: `chat template unusable: ${error.message}` };
  }
  return { kind: "setup", sentence: `the model server could not be set up: ${errorMessage(error)}` };
}
