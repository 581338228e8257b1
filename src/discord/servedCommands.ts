import { commandsWithTasks } from "../../commands/index.js";
import type { Config } from "../platform/config.js";
import type { Logger } from "../platform/logger.js";
import type { Task } from "../tasks/tasks.js";
import type { Command } from "./context.js";
import { deployCommands } from "./deployCommands.js";

/**
 * The application commands the bot serves, built from the tasks the assembly hands it: the built-in ones and one
 * per task. After a prompt reload it serves the new set from the next interaction on, and tells Discord of changed
 * commands where that is safe. It lives in the Discord layer so that the assembly, which reloads the tasks, never
 * loads discord.js or commands/.
 */
export class ServedCommands {
  /** The commands served, by name; /help lists them in registration order, which a Map keeps. */
  readonly byName = new Map<string, Command>();

  constructor(
    tasks: readonly Task[],
    private readonly config: Config,
    private readonly logger: Logger,
  ) {
    this.serve(commandsWithTasks(tasks));
  }

  list(): readonly Command[] {
    return [...this.byName.values()];
  }

  /** Serves these tasks' commands; resolves to what became of their registration, as the reload tells it. */
  async useTasks(tasks: readonly Task[]): Promise<string> {
    const next = commandsWithTasks(tasks);
    const changed = registration(next) !== registration(this.list());
    this.serve(next);
    return changed ? await this.register(next) : "unchanged";
  }

  private serve(commands: readonly Command[]): void {
    this.byName.clear();
    for (const command of commands) this.byName.set(command.data.name, command);
  }

  /** Tells Discord of changed commands: in DISCORD_GUILD_ID at once, globally only when asked to. */
  private async register(commands: readonly Command[]): Promise<string> {
    const { config, logger } = this;
    const { discord } = config;
    const clientId = discord.clientId;
    if (clientId === undefined || (discord.guildId === undefined && !config.reload.registerGlobally)) {
      logger.warn(
        "the commands changed: run npm run deploy-commands (or set DISCORD_GUILD_ID or RELOAD_REGISTER_COMMANDS=true) so Discord shows them",
      );
      return "changed, not registered";
    }
    try {
      await deployCommands({ ...discord, clientId }, commands);
      return discord.guildId === undefined ? "registered globally" : "registered in the guild";
    } catch (error) {
      logger.error({ err: error }, "registering the changed commands failed");
      return "changed, registration failed";
    }
  }
}

/** The commands as Discord registers them, to tell whether a reload changed any. */
function registration(commands: readonly Command[]): string {
  return JSON.stringify(commands.map((command) => command.data.toJSON()));
}
