import { createLogger } from "../src/platform/logger.js";
import { HistoryStore } from "../src/store/history.js";
import { openStore } from "../src/store/openStore.js";

/**
 * A process that appends history turns to one channel as fast as it can, printing "written N" once each append
 * has returned, until it is killed: the crash-safety test kills it and checks every printed turn survived.
 * Usage: node --import tsx testkit/historyWriter.ts <STORE_URL>
 */
const url = process.argv[2] ?? "";
const store = await openStore(url, createLogger({ level: "silent" }));
const history = new HistoryStore(store, { maxTurns: 100_000 }, createLogger({ level: "silent" }));
for (let index = 0; ; index++) {
  await history.append("general", [{ role: "user", text: `turn ${index}`, at: Date.now() }]);
  process.stdout.write(`written ${index}\n`);
}
