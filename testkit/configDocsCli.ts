import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { configDocs } from "./configDocs.js";

/*
 * `npm run config:docs`: rewrites .env.example and README.md's configuration table from src/platform/configTable.ts.
 * Without --write it only checks, and exits 1 naming each file that differs from the table.
 */

const { values } = parseArgs({ options: { write: { type: "boolean", default: false } } });
let stale = 0;
for (const { path, actual, expected } of configDocs()) {
  if (actual === expected) continue;
  if (values.write) {
    writeFileSync(path, expected);
    process.stdout.write(`rewrote ${path}\n`);
  } else {
    stale += 1;
    process.stderr.write(`${path} differs from src/platform/configTable.ts: run npm run config:docs\n`);
  }
}
process.exitCode = stale > 0 ? 1 : 0;
