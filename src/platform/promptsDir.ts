import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/*
 * The prompts folder at the repository's top, found from this file's own place: src/platform/ in the tree, and
 * dist/src/platform/ in the built tree, beside which `npm run build` copies the folder (dist/prompts). It lives in
 * the platform, not beside the prompt loader, because the config's defaults name it and the platform imports
 * nothing of the bot.
 */
export const DEFAULT_PROMPTS_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "prompts");
