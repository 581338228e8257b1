import { ModelUnavailableError, ServerRequestError } from "../../platform/errors.js";
import type { Connection } from "./connection.js";
import { LabelsUnreadableError } from "./serverLabels.js";
import type { ServerSession } from "./session.js";

/*
 * The server session work runs on, and what losing the server mid-request means: an unreachable server or a
 * refused key makes the connection not ready (it reconnects), and the work fails with ModelUnavailableError.
 * ServerLlm runs every request to the server through here.
 */

export class SessionGuard {
  constructor(
    private readonly connection: Connection<ServerSession>,
    /** Aborted when the model is closed: a request failing then is the close, not a lost server. */
    private readonly lifetime: AbortSignal,
  ) {}

  /** The session now; while there is none, ModelUnavailableError with the reason. */
  require(): ServerSession {
    const session = this.connection.session;
    if (session) return session;
    const readiness = this.connection.readiness;
    throw new ModelUnavailableError(readiness.ready ? "the model server is reconnecting" : readiness.cause);
  }

  /** A server that went away, or refused the key, mid-request: not ready from now on, and the work unavailable. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (!this.lost(error)) throw error;
      const readiness = this.connection.readiness;
      throw new ModelUnavailableError(readiness.ready ? (error as Error).message : readiness.cause);
    }
  }

  /** The text's tokens as the server counts them; undefined where it cannot (no tokenizer, not reachable). */
  async tokens(text: string, signal: AbortSignal | undefined): Promise<number[] | undefined> {
    const tokenizer = this.connection.session?.tokenizer;
    if (!tokenizer) return undefined;
    try {
      return await tokenizer.tokenize(text, false, signal ?? this.lifetime);
    } catch (error) {
      if (!this.lost(error)) throw error;
      return undefined;
    }
  }

  /** Flips readiness for an unreachable server or a refused key; true when that is what the error was. */
  private lost(error: unknown): boolean {
    if (!(error instanceof ServerRequestError)) return false;
    if (error.problem !== "unreachable" && error.problem !== "unauthorized") return false;
    if (this.lifetime.aborted) return false;
    this.connection.lost(error);
    return true;
  }
}

/** A session as the log line that says the server is ready again shows it. */
export function describeSession(session: ServerSession): Record<string, unknown> {
  const { facts } = session;
  return {
    kind: facts.kind,
    model: facts.model,
    contextSize: facts.contextSize,
    slots: facts.slots,
    maxInFlight: session.maxInFlight,
    method: session.method,
    promptForm: session.prompts.form,
    sentimentPrefixTokens: session.sentiment.prompt.prefixTokens,
    unreadableTasks: [...session.tasks].flatMap(([name, lane]) =>
      lane instanceof LabelsUnreadableError ? [name] : [],
    ),
  };
}
