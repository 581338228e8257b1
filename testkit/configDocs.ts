import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type Row, rowsOf } from "../src/platform/configSchema.js";
import { CONFIG_TABLE } from "../src/platform/configTable.js";

/*
 * README.md's configuration table and .env.example, rendered from the config table (src/platform/configTable.ts), and read
 * back for test/unit/configDocs.test.ts. `npm run config:docs` (testkit/configDocsCli.ts) writes them.
 */

export const ENV_EXAMPLE_PATH = join(import.meta.dirname, "..", ".env.example");
export const README_PATH = join(import.meta.dirname, "..", "README.md");

const TABLE_ROWS = rowsOf(CONFIG_TABLE);
/** The longest comment line in .env.example, "# " included. */
const WIDTH = 116;
const HEADING_WIDTH = 100;
const NO_BREAK = "\u00a0";

const ENV_HEADER = [
  "# moodbot configuration. Copy to .env and fill in DISCORD_TOKEN (and DISCORD_CLIENT_ID for deploy-commands).",
  '# Real environment variables override this file. Empty values mean "use the default".',
  "# Generated from src/platform/configTable.ts by `npm run config:docs`: change the table there, not this file.",
];

export const README_START =
  "<!-- Generated from src/platform/configTable.ts by `npm run config:docs`: change the table there, not here. -->";
export const README_END = "<!-- End of the generated configuration table. -->";

/** Markdown as a plain-text comment: no backticks; a link becomes where it points. */
function plain(markdown: string): string {
  return markdown
    .replace(/\[([^\]]+)\]\(#[^)]*\)/g, "README, $1")
    .replace(/\[[^\]]+\]\(([^)#]+)(#[^)]*)?\)/g, "$1")
    .replaceAll("`", "");
}

/** A comment wrapped to WIDTH; a no-break space (after "Default:") holds two words on one line. */
function wrapped(text: string): string[] {
  const lines: string[] = [];
  let line = "#";
  for (const word of text.split(" ").filter(Boolean)) {
    if (line !== "#" && line.length + 1 + word.length > WIDTH) {
      lines.push(line);
      line = "#";
    }
    line += ` ${word}`;
  }
  return [...lines, line].map((wrappedLine) => wrappedLine.replaceAll(NO_BREAK, " "));
}

/** What .env.example says above a variable, on one line; `space` goes after "Default:". */
export function envComment({ variable }: Row, space = " "): string {
  const shown = variable.shown === "" ? "" : ` Default:${space}${plain(variable.shown)}`;
  return `${plain(variable.doc)}${shown}`;
}

/** What README.md's table says of a variable. */
export function readmeRow({ variable }: Row): { name: string; default: string; meaning: string } {
  return { name: variable.name, default: variable.shown, meaning: variable.doc };
}

/** The whole of .env.example. */
export function renderEnvExample(rows: readonly Row[] = TABLE_ROWS): string {
  const lines = [...ENV_HEADER];
  let heading: string | undefined;
  for (const row of rows) {
    if (row.heading !== heading) {
      heading = row.heading;
      const title = `# --- ${plain(heading)} `;
      lines.push("", title.padEnd(HEADING_WIDTH, "-"));
    }
    lines.push(...wrapped(envComment(row, NO_BREAK)), `${row.variable.name}=`);
  }
  return `${lines.join("\n")}\n`;
}

const cell = (markdown: string) => markdown.replaceAll("|", "\\|");

/** README.md's configuration table, between its two markers. */
export function renderReadmeTable(rows: readonly Row[] = TABLE_ROWS): string {
  const lines = [README_START, "| Variable | Default | Meaning |", "| --- | --- | --- |"];
  let heading: string | undefined;
  for (const row of rows) {
    if (row.heading !== heading) {
      heading = row.heading;
      lines.push(`| **${cell(heading)}** | | |`);
    }
    const { name, default: shown, meaning } = readmeRow(row);
    lines.push(`| \`${name}\` | ${shown === "" ? "" : `${cell(shown)} `}| ${cell(meaning)} |`);
  }
  return [...lines, README_END].join("\n");
}

/** The generated table in a README: from its start marker to its end marker, both included. */
export function readmeTableOf(readme: string): string {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start === -1 || end < start || readme.indexOf(README_START, start + 1) !== -1) {
    throw new Error(
      `README.md must hold the configuration table once, between "${README_START}" and "${README_END}"`,
    );
  }
  return readme.slice(start, end + README_END.length);
}

/** The README with its generated table replaced by `table`. */
export function withReadmeTable(readme: string, table: string): string {
  return readme.replace(readmeTableOf(readme), () => table);
}

/** Each variable's row in the README's generated table, as written there. */
export function readmeRowsOf(readme: string): { name: string; default: string; meaning: string }[] {
  return readmeTableOf(readme)
    .split("\n")
    .flatMap((line) => {
      const match = /^\| `([A-Z0-9_]+)` \| (.*?) ?\| (.*) \|$/.exec(line);
      return match ? [{ name: match[1] ?? "", default: match[2] ?? "", meaning: match[3] ?? "" }] : [];
    });
}

/** Each variable in an .env.example with its comment (the lines above it, joined), as written there. */
export function envEntriesOf(envExample: string): { name: string; comment: string }[] {
  const entries: { name: string; comment: string }[] = [];
  let comment: string[] = [];
  for (const line of envExample.split("\n")) {
    const variable = /^([A-Z0-9_]+)=/.exec(line);
    if (variable) {
      entries.push({ name: variable[1] ?? "", comment: comment.join(" ") });
      comment = [];
    } else if (line.startsWith("# --- ") || line === "") {
      comment = [];
    } else if (line.startsWith("#")) {
      comment.push(line.replace(/^# ?/, ""));
    }
  }
  return entries;
}

/** The files as they are and as the table makes them. */
export function configDocs(): {
  readonly path: string;
  readonly actual: string;
  readonly expected: string;
}[] {
  const readme = readFileSync(README_PATH, "utf8");
  return [
    { path: ENV_EXAMPLE_PATH, actual: readFileSync(ENV_EXAMPLE_PATH, "utf8"), expected: renderEnvExample() },
    { path: README_PATH, actual: readme, expected: withReadmeTable(readme, renderReadmeTable()) },
  ];
}
