import { type DestinationStream, type Logger, pino } from "pino";

export type { Logger } from "pino";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  readonly level: LogLevel;
  /** Human-readable lines through pino-pretty (a dev dependency): for development only. */
  readonly pretty?: boolean;
  /** Where JSON lines go; standard output by default. */
  readonly destination?: DestinationStream;
  /**
   * Values that never reach a log line, wherever they appear: the bot token, the store's password, the model
   * server's API key.
   */
  readonly secrets?: readonly string[];
}

/** Paths whose values never reach a log line, wherever a child logger or an error object carries them. */
export const REDACTED_PATHS = [
  "token",
  "*.token",
  "*.*.token",
  "config.discord.token",
  "headers.authorization",
  "*.headers.authorization",
  "authorization",
  "apiKey",
  "*.apiKey",
  "*.*.apiKey",
];

const REDACTED = "[redacted]";

/**
 * Secrets that have a shape: interaction and webhook tokens in Discord's routes, credentials in any URL, and a
 * bearer token wherever a request's Authorization header is echoed (a model server's key, whatever its value).
 */
const SECRET_SHAPES: ReadonlyArray<readonly [RegExp, string]> = [
  [/(\/(?:interactions|webhooks)\/\d+\/)[^/?#\s"\\]+/g, `$1${REDACTED}`],
  [/([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"\\]+@/gi, `$1${REDACTED}@`],
  [/(\bBearer\s+)[^\s"\\,;]+/gi, `$1${REDACTED}`],
];

/** Removes the given secrets, and every token-shaped or credential-shaped part of a URL, from a text. */
export function scrubSecrets(text: string, secrets: readonly string[] = []): string {
  let scrubbed = text;
  for (const secret of secrets) {
    // A secret can appear as it is, or escaped inside a JSON string.
    for (const form of new Set([secret, JSON.stringify(secret).slice(1, -1)])) {
      scrubbed = scrubbed.split(form).join(REDACTED);
    }
  }
  for (const [shape, replacement] of SECRET_SHAPES) scrubbed = scrubbed.replace(shape, replacement);
  return scrubbed;
}

/**
 * What an error may carry into a log line. Everything else an error object holds is left out: a failed request's
 * body (a message's content, an uploaded file), a response that echoes a member's text, a library's own fields.
 * The message and stack stay, with tokens scrubbed from the line, and so does the cause chain.
 */
const LOGGED_ERROR_FIELDS = [
  "type",
  "message",
  "stack",
  "code",
  "status",
  "method",
  "url",
  "errno",
  "syscall",
];

/** pino's error serializer, narrowed to the fields above, through the whole `cause` chain. */
export function serializeError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const full = pino.stdSerializers.err(error) as unknown as Record<string, unknown>;
  const serialized: Record<string, unknown> = {};
  for (const field of LOGGED_ERROR_FIELDS) {
    if (full[field] !== undefined) serialized[field] = full[field];
  }
  if (error.cause !== undefined) serialized.cause = serializeError(error.cause);
  if (error instanceof AggregateError) serialized.errors = error.errors.map(serializeError);
  return serialized;
}

/** The one root logger. Everything else logs through `logger.child({ guildId, channelId, … })`. */
export function createLogger(options: LoggerOptions): Logger {
  const secrets = (options.secrets ?? []).filter((secret) => secret.length >= 4);
  const base = {
    level: options.level,
    redact: { paths: REDACTED_PATHS, censor: REDACTED },
    serializers: { err: serializeError },
    // The last line of defence: every line, at every level, is scrubbed as it is written.
    hooks: { streamWrite: (line: string) => scrubSecrets(line, secrets) },
    base: { app: "moodbot", pid: process.pid },
  };
  if (options.pretty) {
    return pino({ ...base, transport: { target: "pino-pretty", options: { colorize: true } } });
  }
  return options.destination ? pino(base, options.destination) : pino(base);
}
