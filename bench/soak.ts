import { runSoak, SOAK_RSS_GROWTH_LIMIT_MB } from "../testkit/soak.js";

/** `npm run soak`: 1,000 mixed messages through the real bot and the loopback Discord, with the tiny model. */
const report = await runSoak({ messages: 1000, channels: 6 });
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
const failures = [
  report.stillUp ? undefined : "the bot stopped answering",
  report.unaccounted === 0 ? undefined : `${report.unaccounted} messages unaccounted for`,
  report.rssGrowthMb < SOAK_RSS_GROWTH_LIMIT_MB
    ? undefined
    : `RSS grew ${report.rssGrowthMb} MB after warm-up (the limit is ${SOAK_RSS_GROWTH_LIMIT_MB} MB)`,
  report.unhandledErrors === 0 ? undefined : `${report.unhandledErrors} unhandled errors`,
  report.errorLogLines === 0 ? undefined : `${report.errorLogLines} error log lines`,
].filter((failure) => failure !== undefined);
process.stdout.write(
  failures.length === 0
    ? `soak: all four checks passed (RSS grew ${report.rssGrowthMb} MB after warm-up, under ${SOAK_RSS_GROWTH_LIMIT_MB} MB)\n`
    : `soak FAILED: ${failures.join("; ")}\n`,
);
process.exitCode = failures.length === 0 ? 0 : 1;
