import { readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { createInterface, type Interface } from "node:readline/promises";
import { pino } from "pino";
import type { App } from "./assembly/app.js";
import { loadConfigOrExit, reportStartupError } from "./entry/startupError.js";
import type { TaskOutcome } from "./llm/llm.js";
import { type Config, configSecrets } from "./platform/config.js";
import { createLogger } from "./platform/logger.js";
import type { EmojiMap } from "./platform/sentimentLabels.js";
import { effectiveEmojis, parseSettingsFile, type Settings } from "./store/settings.js";
import { type Language, percent, replyLanguage, WORDING } from "./wording/wording.js";

/** The console's conversation lives under this channel id in the same store as Discord channels. */
const CONSOLE_CHANNEL_ID = "console";
const BOT_NAME = "moodbot";

/** What the console's stand-in for /settings puts in force. */
interface ConsoleSettings {
  readonly settings: Settings;
  readonly emojis: EmojiMap;
  readonly language: Language;
}

/**
 * `npm run console`: the bot's own pipeline, model and store in a terminal, no Discord needed. Each line gets its
 * mood (emoji, label, confidence) and then the reply. Logs go to standard error, so piped output stays clean.
 */
async function main(): Promise<void> {
  const config = loadConfigOrExit("console");
  const logger = createLogger({
    level: config.logLevel === "info" ? "warn" : config.logLevel,
    destination: pino.destination(2),
    secrets: configSecrets(config),
  });
  try {
    const inForce = consoleSettings(config);
    // The model's modules load only once the config is known to be good.
    const { assemble } = await import("./assembly/app.js");
    // Its log shows warnings only: the terminal still hears how a first download is going.
    const app = await assemble(config, logger, {
      onDownloadProgress: (percent) => console.error(`Downloading the model: ${percent}%`),
    });
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
    await converse(app, lines, inForce);
    await close();
  } catch (error) {
    logger.debug({ err: error }, "console failed");
    reportStartupError(error);
    process.exit(1);
  }
}

/** The same keys as /settings, from a JSON file (CONSOLE_SETTINGS). */
function consoleSettings(config: Config): ConsoleSettings {
  const file = config.consoleSettingsFile;
  const settings = file === undefined ? {} : parseSettingsFile(readFileSync(file, "utf8"), file);
  return {
    settings,
    emojis: effectiveEmojis(config.moodEmojis, settings),
    language: replyLanguage(settings.language),
  };
}

/** Reads lines until the input ends: a `/task` line runs that task, any other line gets its mood and a reply. */
async function converse(app: App, lines: Interface, inForce: ConsoleSettings): Promise<void> {
  // A prompt only makes sense for a person at a terminal; piped input gets clean output.
  const interactive = process.stdin.isTTY === true;
  if (interactive) {
    console.log(`moodbot console (${app.llm.modelName}). Type a message; Ctrl+D or Ctrl+C to quit.`);
  }
  const prompt = () => {
    if (interactive) lines.prompt();
  };
  lines.setPrompt("> ");
  prompt();
  for await (const line of lines) {
    const taskCall = line.match(/^\/([a-z0-9_-]+)\s*(.*)$/s);
    if (taskCall) console.log(await runTaskLine(app, taskCall[1] ?? "", taskCall[2] ?? ""));
    else if (line.trim() !== "")
      for (const answer of await answerLine(app, line, inForce)) console.log(answer);
    prompt();
  }
}

async function runTaskLine(app: App, name: string, argument: string): Promise<string> {
  // The tasks that are commands in Discord; the bot's own (moderation's) are not typed by anyone.
  const commands = app.tasks.filter((candidate) => candidate.command);
  const task = commands.find((candidate) => candidate.name === name);
  if (!task) return `No task /${name}. Tasks: ${commands.map((t) => `/${t.name}`).join(", ") || "none"}.`;
  // The console's own history stands in for a channel's recent messages.
  const input =
    task.input.kind === "channel"
      ? await app.pipeline.recentTranscript(
          CONSOLE_CHANNEL_ID,
          Number(argument) || task.input.defaultCount,
          BOT_NAME,
        )
      : argument;
  return formatTaskOutcome(await app.pipeline.runTask(task, input));
}

/** How a task's answer reads in the terminal. */
function formatTaskOutcome(outcome: TaskOutcome): string {
  if (outcome.kind === "text") return `${BOT_NAME}: ${outcome.text.trim() || "(nothing)"}`;
  const { label, confidence } = outcome.result;
  return `${label} (${percent(confidence)})`;
}

/** The line's mood, then the reply, as the bot would give them in a channel. */
async function answerLine(app: App, line: string, inForce: ConsoleSettings): Promise<string[]> {
  const answers: string[] = [];
  const mood = await app.pipeline.analyzeMood(line, { priority: "interactive", emojis: inForce.emojis });
  if (mood.kind === "mood") {
    const { label, confidence } = mood.result;
    const name = WORDING[inForce.language].labels[label];
    answers.push(`${mood.emoji ?? "·"} ${name} (${percent(confidence)})`);
  }
  const { reply } = await app.pipeline.converse({
    channelId: CONSOLE_CHANNEL_ID,
    authorName: userInfo().username,
    botName: BOT_NAME,
    text: line,
    ...(inForce.settings.persona === undefined ? {} : { persona: inForce.settings.persona }),
    language: inForce.language,
  });
  answers.push(`${BOT_NAME}: ${reply}`);
  return answers;
}

await main();
