// Preloaded with --import by tests that check what a process loads: every package it resolves is appended, one per
// line, to the file named by MOODBOT_IMPORT_LOG.
import { register } from "node:module";

register("./watchImportsHooks.mjs", import.meta.url, { data: { log: process.env.MOODBOT_IMPORT_LOG } });
