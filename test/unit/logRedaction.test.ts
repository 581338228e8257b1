import { describe, expect, it } from "vitest";
import { configSecrets, loadConfig } from "../../src/platform/config.js";
import { createLogger } from "../../src/platform/logger.js";

/** A logger as the entry points make it, writing its lines into an array. */
function capture(secrets: readonly string[]) {
  const lines: string[] = [];
  const logger = createLogger({
    level: "debug",
    secrets,
    destination: { write: (line: string) => void lines.push(line) },
  });
  return { logger, lines };
}

describe("the model server's API key in the log", () => {
  const key = "sk-live-7f3a9c1e5b";
  const config = loadConfig({
    DISCORD_TOKEN: "t.o.k.e.n",
    LLM_SERVER_URL: "https://bot:url-secret-pw@models.example.org/v1",
    LLM_SERVER_API_KEY: key,
  });

  it("never reaches a line: in the message, a field, an error or its cause", () => {
    const { logger, lines } = capture(configSecrets(config));
    logger.warn(`the server refused ${key}`);
    logger.info({ request: { headers: { authorization: `Bearer ${key}` } } }, "request");
    logger.info({ options: { apiKey: key, url: "https://models.example.org" } }, "opening");
    logger.error({ err: new Error("401", { cause: new Error(`key ${key} is wrong`) }) }, "probe failed");
    logger.info({ url: config.model.runtime === "server" ? config.model.url : "" }, "server");
    expect(lines).toHaveLength(5);
    for (const line of lines) {
      expect(line).not.toContain(key);
      expect(line).not.toContain("url-secret-pw");
    }
    expect(lines.join("")).toContain("[redacted]");
  });

  it("is scrubbed by its shape from an echoed Authorization header, whatever key it is", () => {
    const { logger, lines } = capture([]);
    logger.debug({ echoed: "Authorization: Bearer some-other-key-123" }, "the server echoed the request");
    expect(lines[0]).not.toContain("some-other-key-123");
    expect(lines[0]).toContain("Bearer [redacted]");
  });
});
