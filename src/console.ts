import { readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { createInterface } from "node:readline/promises";
import { pino } from "pino";
import { assemble } from "./app.js";
import { LABEL_NAMES, type Language } from "./i18n.js";
import type { TaskOutcome } from "./llm/llm.js";
import { createLogger } from "./logger.js";
import { Pipeline } from "./pipeline.js";
import { loadConfigOrExit, reportStartupError } from "./startupError.js";
import { HistoryStore } from "./store/history.js";
import { effectiveEmojis, parseSettingsFile } from "./store/settings.js";

/** How a task's answer reads in the terminal. */
function formatTaskOutcome(outcome: TaskOutcome): string {
  if (outcome.kind === "text") return `moodbot: ${outcome.text.trim() || "(nothing)"}`;
  const { label, confidence } = outcome.result;
  return `${label} (${Math.round(confidence * 100)}%)`;
}

/** The console's conversation lives under this channel id in the same store as Discord channels. */
export const CONSOLE_CHANNEL_ID = "console";

/**
 * `npm run console`: the bot's own pipeline, model and store in a terminal, no Discord needed. Each line gets its
 * mood (emoji, label, confidence) and then the reply. Logs go to standard error, so piped output stays clean.
 */
async function main(): Promise<void> {
  const config = loadConfigOrExit("console");
  const logger = createLogger({
    level: config.logLevel === "info" ? "warn" : config.logLevel,
    destination: pino.destination(2),
  });
  try {
    // The console's stand-in for /settings: the same keys, from a JSON file (CONSOLE_SETTINGS).
    const settings =
      config.consoleSettingsFile === undefined
        ? {}
        : parseSettingsFile(readFileSync(config.consoleSettingsFile, "utf8"), config.consoleSettingsFile);
    const emojis = effectiveEmojis(config.moodEmojis, settings);
    const language: Language = settings.language === "zh" ? "zh" : "en";
    const app = await assemble(config, logger, { showDownloadProgress: true });
    const { llm, store, prompts, tasks } = app;
    const history = new HistoryStore(store.turns, config.chat.historyTurns, logger);
    const pipeline = new Pipeline({
      llm,
      history,
      prompts,
      config,
      logger,
    });
    const authorName = userInfo().username;
    const lines = createInterface({
      input: process.stdin,
      output: process.stdout,
      terminal: process.stdin.isTTY,
    });
    const close = async () => {
      lines.close();
      await app.close();
    };
    process.once("SIGINT", () => void close().then(() => process.exit(0)));
    if (process.stdin.isTTY)
      console.log(`moodbot console (${llm.modelName}). Type a message; Ctrl+D or Ctrl+C to quit.`);
    // A prompt only makes sense for a person at a terminal; piped input gets clean output.
    const interactive = process.stdin.isTTY === true;
    const prompt = () => {
      if (interactive) lines.prompt();
    };
    lines.setPrompt("> ");
    prompt();
    for await (const line of lines) {
      const taskCall = line.match(/^\/([a-z0-9_-]+)\s*(.*)$/s);
      const task = taskCall ? tasks.find((candidate) => candidate.name === taskCall[1]) : undefined;
      if (taskCall && task) {
        // The console's own history stands in for a channel's recent messages.
        const input =
          task.input.kind === "channel"
            ? (await history.get(CONSOLE_CHANNEL_ID))
                .slice(-(Number(taskCall[2]) || task.input.defaultCount))
                .map((turn) => `${turn.author ?? "moodbot"}: ${turn.text}`)
                .join("\n")
            : (taskCall[2] ?? "");
        console.log(formatTaskOutcome(await pipeline.runTask(task, input)));
      } else if (taskCall) {
        console.log(
          `No task /${taskCall[1]}. Tasks: ${tasks.map((t) => `/${t.name}`).join(", ") || "none"}.`,
        );
      } else if (line.trim() !== "") {
        const mood = await pipeline.analyzeMood(line, { priority: "interactive", emojis });
        if (mood.kind === "mood") {
          const { label, confidence } = mood.result;
          console.log(
            `${mood.emoji ?? "·"} ${LABEL_NAMES[language][label]} (${Math.round(confidence * 100)}%)`,
          );
        }
        const { reply } = await pipeline.converse({
          channelId: CONSOLE_CHANNEL_ID,
          authorName,
          botName: "moodbot",
          text: line,
          ...(settings.persona === undefined ? {} : { persona: settings.persona }),
          language,
        });
        console.log(`moodbot: ${reply}`);
      }
      prompt();
    }
    await close();
  } catch (error) {
    logger.debug({ err: error }, "console failed");
    reportStartupError(error);
    process.exit(1);
  }
}

await main();
