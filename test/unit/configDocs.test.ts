import { readFileSync } from "node:fs";
import { parseEnv } from "node:util";
import { describe, expect, it } from "vitest";
import { CONFIG_VARIABLES, loadConfig } from "../../src/platform/config.js";
import { GENERIC_FIX, rowsOf } from "../../src/platform/configSchema.js";
import { CONFIG_TABLE } from "../../src/platform/configTable.js";
import { ConfigError } from "../../src/platform/errors.js";
import {
  ENV_EXAMPLE_PATH,
  envComment,
  envEntriesOf,
  README_PATH,
  readmeRow,
  readmeRowsOf,
  readmeTableOf,
  renderEnvExample,
  renderReadmeTable,
} from "../../testkit/configDocs.js";

/*
 * README.md's configuration table and .env.example are generated from src/platform/configTable.ts (`npm run config:docs`).
 * These fail while either one drifts from the table: first per variable, so the diff names it, then as a whole.
 */

const FIX = "run `npm run config:docs` to regenerate it from src/platform/configTable.ts";
const rows = rowsOf(CONFIG_TABLE);
const example = readFileSync(ENV_EXAMPLE_PATH, "utf8");
const readme = readFileSync(README_PATH, "utf8");

describe(".env.example", () => {
  it("lists exactly the table's variables, each with its text and default", () => {
    const expected = rows.map((row) => ({ name: row.variable.name, comment: envComment(row) }));
    expect(envEntriesOf(example), FIX).toEqual(expected);
  });

  it("is what the table renders, headings included", () => {
    expect(example, FIX).toBe(renderEnvExample());
  });

  it("documents every variable the config reads", () => {
    expect(Object.keys(parseEnv(example)).sort()).toEqual([...CONFIG_VARIABLES].sort());
  });

  it("works as a .env once a token is filled in, giving the defaults", () => {
    const config = loadConfig({ ...parseEnv(example), DISCORD_TOKEN: "t" });
    expect(config).toEqual(loadConfig({ DISCORD_TOKEN: "t" }));
  });
});

describe("README.md's configuration table", () => {
  it("lists exactly the table's variables, each with its default and meaning", () => {
    expect(readmeRowsOf(readme), FIX).toEqual(rows.map(readmeRow));
  });

  it("is what the table renders, headings included", () => {
    expect(readmeTableOf(readme), FIX).toBe(renderReadmeTable());
  });

  it("shows a machine-dependent default as what it is, not as this machine's value", () => {
    const shown = Object.fromEntries(readmeRowsOf(readme).map((row) => [row.name, row.default]));
    expect(shown.LLM_THREADS).toBe("the machine's CPU count");
    expect(shown.PROMPTS_DIR).not.toContain(process.cwd());
  });
});

describe("the config table", () => {
  it("writes each variable once", () => {
    expect(new Set(CONFIG_VARIABLES).size).toBe(CONFIG_VARIABLES.length);
  });

  it.each(rows.map(({ variable }) => [variable.name]))(
    "a bad %s is blamed on itself, with a fix of its own",
    (name) => {
      // With a server URL the in-process settings are not read, so they are tried without one.
      const runtime = rows.find((row) => row.variable.name === name)?.readBy;
      const server = runtime === "in-process" ? {} : { LLM_SERVER_URL: "http://127.0.0.1:1" };
      const env = { DISCORD_TOKEN: "t", ...server, [name]: "\u0001bad value" };
      try {
        loadConfig(env);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        expect(error.variable).toBe(name);
        expect(error.fix).not.toBe(GENERIC_FIX);
        return;
      }
      // Free text (a path, a key, a model name) takes anything; the config holds it as given.
      expect(JSON.stringify(loadConfig(env))).toContain("bad value");
    },
  );
});
