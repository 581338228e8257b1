import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../testkit/botProcess.js";

/*
 * compose.yaml cannot run here (no Docker daemon, no `docker compose`), so this reads it as Compose would and checks
 * the server profile's wiring. No YAML parser is a dependency of ours, so `readYaml` below reads the part of YAML the
 * file uses (block maps and lists, flow lists, quoted and plain scalars, comments, anchors, aliases and `<<` merges)
 * and throws on anything else: a compose.yaml edited beyond that subset fails here instead of being misread. Its
 * scalars stay strings (`retries: 10` reads "10"): the checks compare text.
 */

type Yaml = string | null | Yaml[] | { [key: string]: Yaml };
type YamlMap = { [key: string]: Yaml };

interface Line {
  readonly number: number;
  readonly indent: number;
  readonly text: string;
}

class YamlSubsetError extends Error {
  constructor(line: number, problem: string) {
    super(`compose.yaml line ${line}: ${problem} (test/unit/compose.test.ts reads only a subset of YAML)`);
  }
}

/** The text before a comment: `#` at the start or after a space, outside quotes. */
function withoutComment(text: string): string {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (quote !== undefined) {
      if (char === quote) quote = undefined;
    } else if (char === '"' || char === "'") {
      quote = char;
    } else if (char === "#" && (i === 0 || text[i - 1] === " ")) {
      return text.slice(0, i);
    }
  }
  return text;
}

function readYaml(source: string): Yaml {
  const lines: Line[] = [];
  source.split("\n").forEach((raw, index) => {
    if (raw.includes("\t")) throw new YamlSubsetError(index + 1, "a tab");
    const text = withoutComment(raw).trimEnd();
    if (text.trim() !== "") lines.push({ number: index + 1, indent: text.search(/\S/), text: text.trim() });
  });
  const anchors = new Map<string, Yaml>();
  let next = 0;

  const scalar = (text: string, line: number): Yaml => {
    if (text.startsWith("*")) {
      const value = anchors.get(text.slice(1));
      if (value === undefined) throw new YamlSubsetError(line, `unknown alias ${text}`);
      return value;
    }
    if (text.startsWith("[")) {
      if (!text.endsWith("]")) throw new YamlSubsetError(line, "a flow list over several lines");
      const inner = text.slice(1, -1).trim();
      const items = inner === "" ? [] : (inner.match(/"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^,]+/g) ?? []);
      return items.map((item) => item.trim()).map((item) => scalar(item, line));
    }
    if (text.startsWith('"')) return JSON.parse(text) as string;
    if (text.startsWith("'")) return text.slice(1, -1).replaceAll("''", "'");
    if (/^[{|>&!]/.test(text)) throw new YamlSubsetError(line, `unsupported value ${text}`);
    return text;
  };

  /** A value after `key:` or `- `: inline, or the block indented below it. */
  const value = (rest: string, parentIndent: number, line: number): Yaml => {
    const anchor = /^&([\w-]+)\s*(.*)$/.exec(rest);
    const text = anchor ? (anchor[2] ?? "") : rest;
    const below = lines[next];
    const parsed =
      text !== "" ? scalar(text, line) : below && below.indent > parentIndent ? block(below.indent) : null;
    if (anchor?.[1] !== undefined) anchors.set(anchor[1], parsed);
    return parsed;
  };

  const block = (indent: number): Yaml => {
    const first = lines[next];
    if (first === undefined) return null;
    const isList = first.text === "-" || first.text.startsWith("- ");
    const list: Yaml[] = [];
    const map: YamlMap = {};
    const merged: YamlMap[] = [];
    while (next < lines.length) {
      const line = lines[next] as Line;
      if (line.indent < indent) break;
      if (line.indent > indent) throw new YamlSubsetError(line.number, "unexpected indentation");
      next++;
      if (isList) {
        if (!line.text.startsWith("-")) throw new YamlSubsetError(line.number, "a key among list items");
        const item = line.text.slice(1).trim();
        if (/^[^"'[\s][^:]*:(\s|$)/.test(item)) throw new YamlSubsetError(line.number, "a map inside a list");
        list.push(value(item, indent, line.number));
        continue;
      }
      const entry = /^("[^"]*"|'[^']*'|[^\s"'#-][^:]*?):(?:\s+(.*))?$/.exec(line.text);
      if (!entry?.[1]) throw new YamlSubsetError(line.number, `not a "key: value" line: ${line.text}`);
      const key = String(scalar(entry[1], line.number));
      const parsed = value(entry[2] ?? "", indent, line.number);
      if (key === "<<") {
        if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
          throw new YamlSubsetError(line.number, "a merge of something other than a map");
        }
        merged.push(parsed);
      } else {
        if (Object.hasOwn(map, key)) throw new YamlSubsetError(line.number, `the key ${key} twice`);
        map[key] = parsed;
      }
    }
    // A merge's keys give way to the map's own, wherever in the map they stand.
    return isList ? list : Object.assign({}, ...merged, map);
  };

  const document = block(0);
  if (next < lines.length) throw new YamlSubsetError(lines[next]?.number ?? 0, "text after the document");
  return document;
}

function asMap(value: Yaml | undefined, what: string): YamlMap {
  if (value === null || value === undefined || typeof value !== "object" || Array.isArray(value)) {
    throw new Error(`${what} is not a map`);
  }
  return value;
}

function asList(value: Yaml | undefined, what: string): string[] {
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    throw new Error(`${what} is not a list of strings`);
  }
  return value as string[];
}

/** The value right after an option in a command line, e.g. `-c 8192`. */
function optionValue(command: readonly string[], option: string): string | undefined {
  const at = command.indexOf(option);
  return at === -1 ? undefined : command[at + 1];
}

const compose = asMap(readYaml(readFileSync(join(REPO_ROOT, "compose.yaml"), "utf8")), "compose.yaml");
const services = asMap(compose.services, "services");
const service = (name: string) => asMap(services[name], `service ${name}`);
const inProfile = (profile: string) =>
  Object.keys(services).filter((name) =>
    asList(service(name).profiles, `${name}'s profiles`).includes(profile),
  );

/** A value as Compose reads it when the variables it names with a default (`${NAME:-default}`) are unset. */
const withDefaults = (text: string) => text.replace(/\$\{[A-Z][A-Z0-9_]*:-([^}]*)\}/g, "$1");

/** A Compose reference to a variable of the environment or .env, with nothing written in its place. */
const REFERENCE = /^\$\{[A-Z][A-Z0-9_]*\}$/;
const SECRET_NAME = /KEY|TOKEN|SECRET|PASSWORD/;
// biome-ignore lint/suspicious/noTemplateCurlyInString: Compose's own ${…} reference, as compose.yaml spells it.
const API_KEY_REFERENCE = "${LLM_SERVER_API_KEY}";

describe("the YAML subset this test reads", () => {
  it("reads anchors, merges (the map's own keys win), flow lists and quoted scalars as YAML does", () => {
    const parsed = readYaml(
      "base: &base\n  a: \"1\"\n  b: two # a comment\nuse:\n  <<: *base\n  b: own\n  list: [x, \"y z\"]\n  items:\n    - 'it''s'\n",
    );
    expect(parsed).toEqual({
      base: { a: "1", b: "two" },
      use: { a: "1", b: "own", list: ["x", "y z"], items: ["it's"] },
    });
  });

  it("refuses what it does not read, rather than misreading it", () => {
    expect(() => readYaml("a: |\n  text\n")).toThrow(/unsupported value/);
    expect(() => readYaml("a:\n  - b: c\n")).toThrow(/a map inside a list/);
    expect(() => readYaml("a: 1\na: 2\n")).toThrow(/twice/);
  });
});

describe("compose.yaml's server profile", () => {
  const server = service("llama-server");
  const command = asList(server.command, "llama-server's command");
  const serverEnvironment = asMap(server.environment, "llama-server's environment");
  const bots = inProfile("server").filter((name) => service(name).image === "moodbot:local");

  it("runs llama.cpp's server image, and one bot built from this repository", () => {
    expect(inProfile("server")).toContain("llama-server");
    expect(withDefaults(String(server.image))).toMatch(
      /^ghcr\.io\/ggml-org\/llama\.cpp:server(-b\d+)?(@sha256:[0-9a-f]{64})?$/,
    );
    expect(bots).toHaveLength(1);
  });

  it("points the bot at the server's service, by its name and the port it listens on", () => {
    const bot = service(bots[0] ?? "");
    const url = new URL(String(asMap(bot.environment, "the bot's environment").LLM_SERVER_URL));
    expect(Object.keys(services)).toContain(url.hostname);
    expect(url.hostname).toBe("llama-server");
    expect(url.port).toBe(optionValue(command, "--port"));
  });

  it("passes the API key to both by reference, and writes no secret inline anywhere", () => {
    const bot = service(bots[0] ?? "");
    expect(asMap(bot.environment, "the bot's environment").LLM_SERVER_API_KEY).toBe(API_KEY_REFERENCE);
    // LLAMA_API_KEY is llama-server's environment form of --api-key.
    expect(serverEnvironment.LLAMA_API_KEY).toBe(API_KEY_REFERENCE);
    for (const name of Object.keys(services)) {
      const environment = asMap(service(name).environment ?? {}, `${name}'s environment`);
      for (const [variable, setting] of Object.entries(environment)) {
        if (SECRET_NAME.test(variable))
          expect(`${name}: ${variable}=${setting}`).toMatch(/=\$\{[A-Z0-9_]+\}$/);
      }
      const args = service(name).command;
      const apiKey = Array.isArray(args)
        ? optionValue(asList(args, `${name}'s command`), "--api-key")
        : undefined;
      if (apiKey !== undefined) expect(apiKey).toMatch(REFERENCE);
    }
  });

  it("starts the server without -np, with -c for all its slots and each conversation's share of it", () => {
    expect(command).not.toContain("-np");
    expect(command).not.toContain("--parallel");
    expect(Object.keys(serverEnvironment)).not.toContain("LLAMA_ARG_N_PARALLEL");
    // Without -np, llama-server runs 4 slots over one unified KV cache: -c must hold 4 conversations.
    const perConversation = Number(optionValue(command, "--kv-unified-per-slot"));
    expect(perConversation).toBeGreaterThan(0);
    expect(Number(optionValue(command, "-c"))).toBe(4 * perConversation);
  });

  it("shares the models volume: the server reads its model from the volume the bot downloads into", () => {
    const bot = service(bots[0] ?? "");
    const botModels = asMap(bot.environment, "the bot's environment").MODELS_DIR;
    expect(asList(bot.volumes, "the bot's volumes")).toContain(`models:${botModels}`);
    const mount = asList(server.volumes, "llama-server's volumes").find((volume) =>
      volume.startsWith("models:"),
    );
    const serverModels = mount?.split(":")[1];
    expect(serverModels).toBeDefined();
    expect(withDefaults(optionValue(command, "-m") ?? "")).toMatch(
      new RegExp(`^${serverModels}/[^/]+\\.gguf$`),
    );
    expect(Object.keys(asMap(compose.volumes, "volumes"))).toContain("models");
  });

  it("does not make the bot wait for the server: a model server that is away never stops the bot", () => {
    const bot = service(bots[0] ?? "");
    expect(Object.keys(asMap(bot.depends_on ?? {}, "the bot's depends_on"))).not.toContain("llama-server");
  });
});
