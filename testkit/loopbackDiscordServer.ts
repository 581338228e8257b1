import { FakeDiscord } from "./fakeDiscord.js";
import { testEnv } from "./harness.js";
import { tinyModel } from "./models.js";

/*
 * The loopback Discord and a tiny model, as a standalone program for deploy/container-smoke.sh: it prints the
 * environment a bot needs to reach them (one JSON line), then serves until it gets SIGTERM. Run it with tsx.
 */

const discord = await new FakeDiscord().start();
const model = await tinyModel({ favouredToken: " lorem" });
const { DISCORD_TOKEN, DISCORD_CLIENT_ID, DISCORD_API_URL, MODEL_PATH, LLM_THREADS, LLM_GPU } = testEnv(
  discord,
  model,
  "",
);
process.stdout.write(
  `${JSON.stringify({ DISCORD_TOKEN, DISCORD_CLIENT_ID, DISCORD_API_URL, MODEL_PATH, LLM_THREADS, LLM_GPU })}\n`,
);
process.on("SIGTERM", () => {
  void discord.stop().then(() => process.exit(0));
});
