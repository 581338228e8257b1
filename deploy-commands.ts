import { BUILT_IN_COMMAND_NAMES, commandsWithTasks } from "./commands/index.js";
import { loadConfig } from "./src/config.js";
import { deployCommands } from "./src/discord/deployCommands.js";
import { reportStartupError } from "./src/startupError.js";
import { loadTasks } from "./src/tasks.js";

/** `npm run deploy-commands`: registers every command in commands/index.ts, globally or to DISCORD_GUILD_ID. */
try {
  const { discord, tasksDir } = loadConfig(undefined, "deploy");
  const commands = commandsWithTasks(loadTasks(tasksDir, BUILT_IN_COMMAND_NAMES));
  const clientId = discord.clientId ?? "";
  const count = await deployCommands({ ...discord, clientId }, commands);
  const where =
    discord.guildId === undefined
      ? "globally (may take up to an hour to appear)"
      : `to guild ${discord.guildId}`;
  console.log(`Registered ${count} command${count === 1 ? "" : "s"} ${where}.`);
} catch (error) {
  reportStartupError(error);
  process.exitCode = 1;
}
