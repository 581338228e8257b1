import { type FSWatcher, watch } from "node:fs";
import { relative } from "node:path";
import type { OutcomeOf } from "../outcomes/outcomes.js";
import type { Config } from "../platform/config.js";

import type { Logger } from "../platform/logger.js";
import { PromptFileError } from "../prompts/prompts.js";
import { type Task, TaskFileError } from "../tasks/tasks.js";
import type { App } from "./app.js";

/** File changes closer together than this make one reload: an editor saves a file in several writes. */
const WATCH_DEBOUNCE_MS = 300;

export type ReloadTrigger = OutcomeOf<"reloaded">["trigger"];

/**
 * What a reload needs of the bot (the Discord layer's Bot has it): to serve the reloaded tasks' commands and tell
 * Discord of them. Named here so that the assembly never imports the Discord layer.
 */
export interface ReloadableBot {
  /** Resolves to what became of the commands' registration: "unchanged", "registered in the guild", … */
  useTasks(tasks: readonly Task[]): Promise<string>;
}

/**
 * Reloads prompts/ and prompts/tasks/ into the running bot: the model's cached prefixes are evaluated anew between
 * two passes, the bot serves the new commands, and Discord is told of changed commands where that is safe. The
 * gateway connection and the warm chat sequences stay. A bad file refuses the whole reload with one error that
 * names the file, and the bot goes on with the prompts it had. Reloads never overlap: one asked for while
 * another runs happens once it is done.
 */
export class PromptReloader {
  private running: Promise<boolean> | undefined;
  private queued: Promise<boolean> | undefined;

  constructor(private readonly deps: { app: App; bot: ReloadableBot; logger: Logger }) {}

  /** Resolves true when the new prompts are in force, false when the reload was refused. */
  reload(trigger: ReloadTrigger): Promise<boolean> {
    if (!this.running) {
      this.running = this.run(trigger).finally(() => (this.running = undefined));
      return this.running;
    }
    this.queued ??= this.running.then(() => {
      this.queued = undefined;
      return this.reload(trigger);
    });
    return this.queued;
  }

  private async run(trigger: ReloadTrigger): Promise<boolean> {
    const { app, bot, logger } = this.deps;
    const started = performance.now();
    let reloaded: Awaited<ReturnType<App["reload"]>>;
    try {
      reloaded = await app.reload();
    } catch (error) {
      const file =
        error instanceof PromptFileError || error instanceof TaskFileError ? error.file : undefined;
      logger.error(
        { trigger, file, err: error },
        "prompt reload refused: still serving the previous prompts",
      );
      app.outcomes.emit({ kind: "reloadRefused", trigger, ...(file === undefined ? {} : { file }) });
      return false;
    }
    const registered = await bot.useTasks(app.tasks);
    logger.info(
      {
        trigger,
        tasks: reloaded.tasks,
        sentimentPrefixTokens: reloaded.sentimentPrefixTokens,
        commands: registered,
        ms: Math.round(performance.now() - started),
      },
      "prompts reloaded",
    );
    if (reloaded.needRestart.length > 0) {
      logger.warn(
        { tasks: reloaded.needRestart },
        "new label tasks need a restart: the model has one sequence per label task it was started with; restart the bot to serve them",
      );
    }
    app.outcomes.emit({
      kind: "reloaded",
      trigger,
      tasks: reloaded.tasks,
      sentimentPrefixTokens: reloaded.sentimentPrefixTokens,
      commands: registered,
      needRestart: reloaded.needRestart,
    });
    return true;
  }
}

/**
 * PROMPTS_WATCH=true: a reload after files in the prompts and tasks folders change, debounced. Returns the
 * function that stops watching.
 */
export function watchPrompts(reloader: PromptReloader, config: Config, logger: Logger): () => void {
  let timer: NodeJS.Timeout | undefined;
  const changed = () => {
    clearTimeout(timer);
    timer = setTimeout(() => void reloader.reload("file change"), WATCH_DEBOUNCE_MS);
  };
  const folders = [config.promptsDir];
  if (relative(config.promptsDir, config.tasksDir).startsWith("..")) folders.push(config.tasksDir);
  const watchers: FSWatcher[] = [];
  for (const folder of folders) {
    try {
      const watcher = watch(folder, { recursive: true }, changed);
      watcher.on("error", (error) => logger.warn({ folder, err: error }, "prompt watcher failed"));
      watchers.push(watcher);
    } catch (error) {
      logger.warn({ folder, err: error }, "cannot watch the prompts folder; SIGHUP still reloads");
    }
  }
  logger.info({ folders }, "watching the prompts for changes");
  return () => {
    clearTimeout(timer);
    for (const watcher of watchers) watcher.close();
  };
}
