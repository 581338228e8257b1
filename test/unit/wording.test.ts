import { describe, expect, it } from "vitest";
import { helpText } from "../../commands/help.js";
import { commands } from "../../commands/index.js";
import { ConfigError } from "../../src/platform/errors.js";
import {
  type Language,
  type ModelLocation,
  modelLocationOf,
  ON_THIS_MACHINE,
  type PrivacyFacts,
  WORDING,
} from "../../src/wording/wording.js";

/*
 * Members are told that no message leaves the machine only while that holds: the model in the bot's process or on a
 * loopback server. With a model server elsewhere, every text that promised it names the server's host instead, and
 * says that its prompt cache and logs hold members' text.
 */

const HOST = "gpu-box.example.org";
const ELSEWHERE: ModelLocation = { where: "server", host: HOST };
const LANGUAGES: readonly Language[] = ["en", "zh"];

/** The words that make the promise, and those that name a server, in each language. */
const PROMISE: Readonly<Record<Language, RegExp>> = {
  en: /running on this server's own machine|no message is sent to any other service|runs on this machine's own model/,
  zh: /运行在这个服务器自己的机器上|不会把任何消息发给其他服务|审核使用本机自己的模型/,
};
const SENT_THERE: Readonly<Record<Language, RegExp>> = {
  en: /sent there|sends every message it checks to/,
  zh: /发送到那里|发送到模型服务器/,
};
const HELD_THERE: Readonly<Record<Language, RegExp>> = { en: /prompt cache.*logs/s, zh: /提示词缓存.*日志/s };

const facts = (model: ModelLocation): PrivacyFacts => ({
  model,
  retentionDays: 30,
  optedOut: false,
  turns: 12_345,
  channels: 678,
  tallyDays: 999,
});

const setup = (model: ModelLocation) => ({
  model,
  mode: "dry-run",
  alertChannel: "<#1>",
  channels: ["<#2>"],
  threshold: "0.8",
  bypassRoles: [],
});

/** Every text that says where the model runs, in one language. */
const texts = (language: Language, model: ModelLocation) => ({
  help: helpText(
    commands.map((command) => command.data),
    language,
    model,
  ),
  privacy: WORDING[language].privacy.show(facts(model)),
  moderation: WORDING[language].moderation.setup(setup(model)),
});

describe("where the model runs, from LLM_SERVER_URL", () => {
  it("is this machine in-process and at a loopback address, whatever the URL's path", () => {
    for (const url of [
      undefined,
      "http://127.0.0.1:8080",
      "http://localhost:8080/v1",
      "http://LOCALHOST:8080",
      "http://127.1:8080",
      "http://127.8.9.10:8080",
      "http://[::1]:8080/v1",
      "http://[::ffff:127.0.0.1]:8080",
    ]) {
      expect(modelLocationOf(url), String(url)).toEqual(ON_THIS_MACHINE);
    }
  });

  it("is the server's host anywhere else, a container's service name and the machine's own LAN address too", () => {
    expect(modelLocationOf("http://llama-server:8080")).toEqual({ where: "server", host: "llama-server" });
    expect(modelLocationOf("http://192.168.1.20:11434")).toEqual({ where: "server", host: "192.168.1.20" });
    expect(modelLocationOf("http://[2001:db8::1]:8000/v1")).toEqual({
      where: "server",
      host: "[2001:db8::1]",
    });
    expect(modelLocationOf("http://0.0.0.0:8080")).toEqual({ where: "server", host: "0.0.0.0" });
  });

  it("names the host alone: no user, password, port or path reaches a member", () => {
    const location = modelLocationOf("https://moodbot:s3cret-pass@API.Example.com:8443/v1?key=abc");
    expect(location).toEqual({ where: "server", host: "api.example.com" });
    expect(JSON.stringify(location)).not.toMatch(/s3cret|moodbot|8443|v1|abc/);
  });

  it("refuses a URL it cannot read, without repeating it", () => {
    // Without its scheme, "llama-server:8080" is a URL of the scheme llama-server, with no host.
    expect(() => modelLocationOf("llama-server:8080")).toThrow(ConfigError);
    expect(() => modelLocationOf("ftp://models.example.org")).toThrow(ConfigError);
    expect(() => modelLocationOf("not a url s3cret")).toThrow(/^LLM_SERVER_URL is not an http or https URL/);
    expect(() => modelLocationOf("not a url s3cret")).not.toThrow(/s3cret/);
  });
});

describe.each(LANGUAGES)("the texts that say where messages go (%s)", (language) => {
  it("promise that no message leaves the machine while the model is on it", () => {
    for (const [name, text] of Object.entries(texts(language, ON_THIS_MACHINE))) {
      expect(text, name).toMatch(PROMISE[language]);
      expect(text, name).not.toMatch(SENT_THERE[language]);
    }
  });

  it("name the model server's host instead, once the model is elsewhere, and make no such promise", () => {
    for (const [name, text] of Object.entries(texts(language, ELSEWHERE))) {
      expect(text, name).toContain(`\`${HOST}\``);
      expect(text, name).toMatch(SENT_THERE[language]);
      expect(text, name).not.toMatch(PROMISE[language]);
    }
  });

  it("say that the server's prompt cache and logs hold members' text, where the member is told what is kept", () => {
    const { privacy, moderation } = texts(language, ELSEWHERE);
    expect(privacy).toMatch(HELD_THERE[language]);
    expect(moderation).toMatch(HELD_THERE[language]);
    expect(privacy).toContain("/privacy delete");
  });

  it("keep the rest of each text, and /privacy show within one Discord message, either way", () => {
    for (const model of [ON_THIS_MACHINE, ELSEWHERE]) {
      const { help, privacy, moderation } = texts(language, model);
      expect(privacy.length).toBeLessThanOrEqual(2000);
      expect(help.length).toBeLessThanOrEqual(2000);
      expect(help).toContain("/help");
      expect(privacy).toContain("/privacy opt-out");
      expect(moderation).toContain("/privacy");
    }
  });
});
