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
];

/** The one root logger. Everything else logs through `logger.child({ guildId, channelId, … })`. */
export function createLogger(options: LoggerOptions): Logger {
  const base = {
    level: options.level,
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    base: { app: "moodbot", pid: process.pid },
  };
  if (options.pretty) {
    return pino({ ...base, transport: { target: "pino-pretty", options: { colorize: true } } });
  }
  return options.destination ? pino(base, options.destination) : pino(base);
}
