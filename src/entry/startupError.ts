import { type Config, type ConfigPurpose, loadConfig } from "../platform/config.js";
import { MoodbotError } from "../platform/errors.js";

/**
 * Prints a startup failure as one paragraph for the operator: the typed errors already say what is wrong and how
 * to fix it, so there is no stack trace. Anything unexpected is shown with its message and a pointer to more.
 */
export function reportStartupError(error: unknown): void {
  if (error instanceof MoodbotError) {
    console.error(`\nmoodbot cannot start: ${error.message}\n`);
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  console.error(
    `\nmoodbot cannot start: ${message}\nRun again with LOG_LEVEL=debug for details, and see README.md.\n`,
  );
}

/** The entry points' first step: the config, or one clear paragraph and exit code 1. */
export function loadConfigOrExit(purpose: ConfigPurpose = "bot"): Config {
  try {
    return loadConfig(undefined, purpose);
  } catch (error) {
    reportStartupError(error);
    process.exit(1);
  }
}
