import { InteractionContextType } from "discord.js";
import { expect, it } from "vitest";
import { commands } from "../../commands/index.js";
import { data as settings } from "../../commands/settings.js";

/*
 * Where a command may be used is said through `contexts`, which Discord reads today; `dm_permission` is the
 * deprecated field it replaced, and no command sends it.
 */

it("/settings is a server command through contexts, not the deprecated dm_permission", () => {
  const json = settings.toJSON();
  expect(json.contexts).toEqual([InteractionContextType.Guild]);
  expect(json.dm_permission).toBeUndefined();
});

it("no built-in command sends dm_permission", () => {
  const sending = commands.filter((command) => command.data.toJSON().dm_permission !== undefined);
  expect(sending.map((command) => command.data.name)).toEqual([]);
});
