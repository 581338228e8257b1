/**
 * Typed errors that carry their context. A startup error is shown to the operator as one paragraph, never as a
 * stack trace, so each one says what went wrong and how to fix it.
 */
export class MoodbotError extends Error {
  override readonly name: string = "MoodbotError";
}

/** An environment variable is missing or invalid. */
export class ConfigError extends MoodbotError {
  override readonly name = "ConfigError";
  constructor(
    readonly variable: string,
    readonly problem: string,
    readonly fix: string,
  ) {
    super(`${variable} ${problem}. ${fix}`);
  }
}

/** The model file could not be found, fetched or loaded. */
export class ModelLoadError extends MoodbotError {
  override readonly name = "ModelLoadError";
  constructor(
    readonly modelSource: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The Keyv store could not be opened, read or written. */
export class StoreError extends MoodbotError {
  override readonly name = "StoreError";
  constructor(
    /** The store's connection string with any password removed: errors are logged. */
    readonly storeUrl: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A model job was dropped before it ran: the scheduler is shutting down, or the caller gave up. */
export class JobCancelledError extends MoodbotError {
  override readonly name = "JobCancelledError";
  constructor(
    readonly jobKind: string,
    readonly reason: string,
  ) {
    super(`${jobKind} job cancelled: ${reason}`);
  }
}

export const errorMessage = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);

/** Discord refused the bot's connection for a reason its owner fixes in the Developer Portal. */
export class DiscordSetupError extends MoodbotError {
  override readonly name = "DiscordSetupError";
  constructor(
    readonly problem: string,
    readonly fix: string,
    options?: ErrorOptions,
  ) {
    super(`${problem}. ${fix}`, options);
  }
}

/**
 * Why a model server could not be used. `unreachable`: no connection; `unauthorized`: 401/403 (a wrong or missing
 * LLM_SERVER_API_KEY); `timeout`: no answer within LLM_SERVER_TIMEOUT_MS, or a stream silent for longer than
 * LLM_SERVER_STREAM_IDLE_MS; `http`: any other error status; `protocol`: an answer the bot cannot read;
 * `unsupported`: the server works but cannot do what the bot needs (no probabilities, unreadable labels).
 */
export type ServerProblem = "unreachable" | "unauthorized" | "timeout" | "http" | "protocol" | "unsupported";

/** A request to the model server failed. Carries the route and the status, never the key or a member's text. */
export class ServerRequestError extends MoodbotError {
  override readonly name = "ServerRequestError";
  constructor(
    readonly problem: ServerProblem,
    /** The route, such as "POST /completion". */
    readonly route: string,
    message: string,
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * The model cannot take work now: a model server that is unreachable, refuses the key, or serves a model whose
 * labels cannot be read. `cause` is the readiness cause, one sentence for operators (never the key).
 */
export class ModelUnavailableError extends MoodbotError {
  override readonly name = "ModelUnavailableError";
  constructor(override readonly cause: string) {
    super(`The model is not ready: ${cause}`);
  }
}
