import { REST, Routes } from "discord.js";
import type { Command } from "./context.js";

export interface DeployTarget {
  readonly token: string;
  readonly clientId: string;
  /** Registers to one guild (instant) instead of globally (may take up to an hour to appear). */
  readonly guildId: string | undefined;
  readonly apiUrl: string;
}

/** Replaces the application's slash commands with `commands` in one bulk overwrite. */
export async function deployCommands(target: DeployTarget, commands: readonly Command[]): Promise<number> {
  const rest = new REST({ api: target.apiUrl }).setToken(target.token);
  const route =
    target.guildId === undefined
      ? Routes.applicationCommands(target.clientId)
      : Routes.applicationGuildCommands(target.clientId, target.guildId);
  const body = commands.map((command) => command.data.toJSON());
  const result = (await rest.put(route, { body })) as unknown[];
  return result.length;
}
