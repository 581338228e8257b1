/*
 * The names the bot's own commands take (commands/index.ts), which no prompt-defined task may reuse. The list is
 * data here, not read from the commands, so that loading tasks (the assembly, the console) never loads the Discord
 * layer; test/unit/tasks.test.ts checks that the commands take exactly these names.
 */
export const BUILT_IN_COMMAND_NAMES: ReadonlySet<string> = new Set([
  "sentiment",
  "Analyze mood",
  "Mood of this member",
  "mood",
  "forget",
  "settings",
  "privacy",
  "help",
]);
