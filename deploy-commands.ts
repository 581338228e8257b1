import { reportStartupError } from "./src/entry/startupError.js";
import { loadConfig } from "./src/platform/config.js";
import { BUILT_IN_COMMAND_NAMES } from "./src/tasks/builtInNames.js";
import { loadTasks } from "./src/tasks/tasks.js";

/** `npm run deploy-commands`: registers every command in commands/index.ts, globally or to DISCORD_GUILD_ID. */
async function main(): Promise<void> {
  const { discord, tasksDir } = loadConfig(undefined, "deploy");
  // discord.js loads only once the config is known to be good.
  const [{ commandsWithTasks }, { deployCommands }] = await Promise.all([
    import("./commands/index.js"),
    import("./src/discord/deployCommands.js"),
  ]);
  const commands = commandsWithTasks(loadTasks(tasksDir, BUILT_IN_COMMAND_NAMES));
  const count = await deployCommands({ ...discord, clientId: discord.clientId ?? "" }, commands);
  const where =
    discord.guildId === undefined
      ? "globally (may take up to an hour to appear)"
      : `to guild ${discord.guildId}`;
  console.log(`Registered ${count} command${count === 1 ? "" : "s"} ${where}.`);
}

try {
  await main();
} catch (error) {
  reportStartupError(error);
  process.exitCode = 1;
}
