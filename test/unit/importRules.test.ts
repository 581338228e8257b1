import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/*
 * The import rules of docs/architecture.md, checked on the code itself. Every import counts: type-only imports,
 * re-exports and `import("…")` types too. Rules on layers hold transitively: a model file may not reach Discord
 * code through a helper either.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SOURCE_FOLDERS = ["src", "commands", "bench", "eval", "testkit", "test"];
const ENTRY_POINTS = [
  "src/index.ts",
  "src/sharded.ts",
  "src/console.ts",
  "src/modelCli.ts",
  "deploy-commands.ts",
  "bench/run.ts",
  "bench/soak.ts",
  "bench/modelCost.ts",
  "eval/run.ts",
  "testkit/loopbackDiscordServer.ts",
];

/** Each file (relative to the root) with what it imports: project files as paths, packages by name. */
type ImportGraph = ReadonlyMap<string, readonly string[]>;

const inFolder =
  (...folders: readonly string[]) =>
  (path: string): boolean =>
    folders.some((folder) => path.startsWith(folder));
/** The parts of docs/architecture.md, by folder. */
const isModelLayer = inFolder("src/llm/");
const isStoreLayer = inFolder("src/store/");
const isPlatform = inFolder("src/platform/");
const isAssembly = inFolder("src/assembly/");
const isPipeline = inFolder("src/pipeline/");
const isEntryHelper = inFolder("src/entry/");
const LEAVES = [
  "src/prompts/",
  "src/tasks/",
  "src/wording/",
  "src/text/",
  "src/transcript/",
  "src/outcomes/",
];
const isLeaf = inFolder(...LEAVES);
/** The bot's own code: src/, commands/ and deploy-commands.ts. */
const isProduct = (file: string) => inFolder("src/", "commands/")(file) || file === "deploy-commands.ts";
const isBotPart = inFolder("src/", "commands/");
const isDiscordPackage = (target: string) => target === "discord.js" || target.startsWith("@discordjs/");
const isDiscordCode = (target: string) =>
  isDiscordPackage(target) || target.startsWith("src/discord/") || target.startsWith("commands/");
/** The config module: loadConfig and the table, schema, values and model settings it is built from. */
const isConfigModule = (target: string) =>
  /^src\/platform\/(config|configSchema|configTable|configValues|modelConfig)\.ts$/.test(target);
const isStoreOrConfig = (target: string) => isStoreLayer(target) || isConfigModule(target);
const IN_PROCESS_FOLDER = "src/llm/inProcess/";
const isInProcess = inFolder(IN_PROCESS_FOLDER);
const isNodeLlamaCpp = (target: string) =>
  target === "node-llama-cpp" || target.startsWith("node-llama-cpp/");
/** The bot's own code outside the in-process runtime: bench/, eval/, testkit/ and test/ may measure it directly. */
const isProductOutsideInProcess = (file: string) => isProduct(file) && !isInProcess(file);
/** The factory that chooses the runtime, and the entry point that manages model files, open the folder. */
const OPENS_IN_PROCESS = ["src/llm/openModel.ts", "src/modelCli.ts"];

interface Rule {
  readonly name: string;
  readonly appliesTo: (file: string) => boolean;
  readonly forbids: (target: string) => boolean;
  /** Follow imports through other project files. */
  readonly transitive: boolean;
  /** When following, only through the files this accepts (all of them when absent). */
  readonly through?: (file: string) => boolean;
}

const RULES: readonly Rule[] = [
  {
    name: "the model and store layers never import discord.js or the Discord layer",
    appliesTo: (file) => isModelLayer(file) || isStoreLayer(file),
    forbids: isDiscordCode,
    transitive: true,
  },
  {
    name: "the model layer never imports the store or the config module",
    appliesTo: isModelLayer,
    forbids: isStoreOrConfig,
    transitive: true,
  },
  {
    name: "the pipeline never imports discord.js or the Discord layer",
    appliesTo: isPipeline,
    forbids: isDiscordCode,
    transitive: true,
  },
  {
    name: "product code never imports the test kit",
    appliesTo: isProduct,
    forbids: (target) => target.startsWith("testkit/"),
    transitive: false,
  },
  {
    name: "nothing imports an entry point",
    appliesTo: () => true,
    forbids: (target) => ENTRY_POINTS.includes(target),
    transitive: false,
  },
  {
    name: "the health and metrics layer never imports Discord code, the store layer or the config module",
    appliesTo: inFolder("src/observability/"),
    forbids: (target) => isDiscordCode(target) || isStoreOrConfig(target),
    transitive: true,
  },
  {
    name: "the platform (src/platform/) imports no other part",
    appliesTo: isPlatform,
    forbids: (target) => isBotPart(target) && !isPlatform(target),
    transitive: false,
  },
  {
    name: "the leaves import only the platform and other leaves",
    appliesTo: isLeaf,
    forbids: (target) => isBotPart(target) && !isPlatform(target) && !isLeaf(target),
    transitive: false,
  },
  {
    name: "the assembly (src/assembly/) never reaches discord.js, the Discord layer or commands/",
    appliesTo: isAssembly,
    forbids: isDiscordCode,
    transitive: true,
  },
  {
    // Checked at run time too: test/e2e/serverEntryPoints.test.ts watches what the console process loads.
    name: "the console never reaches discord.js, the Discord layer or commands/",
    appliesTo: (file) => file === "src/console.ts",
    forbids: isDiscordCode,
    transitive: true,
  },
  {
    name: "in the bot, only the entry points import the assembly",
    appliesTo: (file) => isProduct(file) && !ENTRY_POINTS.includes(file) && !isAssembly(file),
    forbids: isAssembly,
    transitive: false,
  },
  {
    name: "in the bot, only the entry points import their helpers (src/entry/)",
    appliesTo: (file) => isProduct(file) && !ENTRY_POINTS.includes(file) && !isEntryHelper(file),
    forbids: isEntryHelper,
    transitive: false,
  },
  {
    name: "in the bot, only src/llm/inProcess/ imports node-llama-cpp",
    appliesTo: isProductOutsideInProcess,
    forbids: isNodeLlamaCpp,
    transitive: false,
  },
  {
    name: "only the runtime factory (src/llm/openModel.ts) and npm run model import src/llm/inProcess/",
    appliesTo: (file) => isProductOutsideInProcess(file) && !OPENS_IN_PROCESS.includes(file),
    forbids: isInProcess,
    transitive: false,
  },
  {
    // The factory imports the folder, so a plain transitive rule would fail by construction: every path is
    // followed except through the folder itself.
    name: "no path from the bot to node-llama-cpp bypasses src/llm/inProcess/",
    appliesTo: isProductOutsideInProcess,
    forbids: isNodeLlamaCpp,
    transitive: true,
    through: (file) => !isInProcess(file),
  },
];

/** A rule by the start of its name. */
function rule(start: string): Rule {
  const found = RULES.find((candidate) => candidate.name.startsWith(start));
  if (!found) throw new Error(`no rule starts with "${start}"`);
  return found;
}

/** Every broken rule, as "rule: file → … → forbidden import". */
function violations(graph: ImportGraph, rules: readonly Rule[] = RULES): string[] {
  const found: string[] = [];
  for (const rule of rules) {
    for (const file of graph.keys()) {
      if (!rule.appliesTo(file)) continue;
      const path = findForbidden(graph, file, rule);
      if (path) found.push(`${rule.name}: ${path.join(" → ")}`);
    }
  }
  return found;
}

function findForbidden(graph: ImportGraph, start: string, rule: Rule): string[] | undefined {
  const seen = new Set<string>([start]);
  const queue: string[][] = [[start]];
  while (queue.length > 0) {
    const path = queue.shift() ?? [];
    const file = path.at(-1) ?? "";
    for (const target of graph.get(file) ?? []) {
      if (rule.forbids(target)) return [...path, target];
      if (!rule.transitive || seen.has(target) || !graph.has(target)) continue;
      if (rule.through && !rule.through(target)) continue;
      seen.add(target);
      queue.push([...path, target]);
    }
  }
  return undefined;
}

function sourceFiles(): string[] {
  const files = ["deploy-commands.ts"];
  for (const folder of SOURCE_FOLDERS) {
    for (const entry of readdirSync(join(ROOT, folder), { recursive: true, encoding: "utf8" })) {
      if (entry.endsWith(".ts") && !entry.includes("node_modules")) files.push(join(folder, entry));
    }
  }
  return files;
}

/** The repository's import graph, read with TypeScript's own import scanner. */
function repositoryGraph(): ImportGraph {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles()) {
    const scanned = ts.preProcessFile(readFileSync(join(ROOT, file), "utf8"), true, true);
    graph.set(
      file,
      scanned.importedFiles.map(({ fileName }) => {
        if (!fileName.startsWith(".")) return fileName;
        const target = normalize(join(dirname(file), fileName));
        return target.replace(/\.js$/, ".ts");
      }),
    );
  }
  return graph;
}

describe("import rules", () => {
  it("hold in this repository", () => {
    const graph = repositoryGraph();
    // The scanner really sees the code: the model layer's own imports, type-only ones included.
    expect(graph.get("src/llm/llm.ts")).toContain("src/prompts/prompts.ts");
    expect(graph.get("src/discord/createBot.ts")).toContain("discord.js");
    expect(graph.get("src/llm/inProcess/model.ts")).toContain("node-llama-cpp");
    expect(graph.get("src/llm/openModel.ts")).toContain("src/llm/inProcess/model.ts");
    expect(violations(graph)).toEqual([]);
  });

  it("each apply to files that exist, and forbid imports that exist", () => {
    // A rule whose folder was renamed or mistyped would hold vacuously: it must apply to some file, and what it
    // forbids must be something the repository has (a file, or a package some file imports).
    const graph = repositoryGraph();
    const known = new Set([...graph.keys(), ...[...graph.values()].flat()]);
    const vacuous = RULES.filter(
      (candidate) => ![...graph.keys()].some(candidate.appliesTo) || ![...known].some(candidate.forbids),
    ).map((candidate) => candidate.name);
    expect(vacuous).toEqual([]);
    for (const folder of LEAVES) expect([...graph.keys()].some(inFolder(folder)), folder).toBe(true);
  });

  it("catch a direct, a type-only or an indirect import that breaks them", () => {
    const scanned = (text: string) =>
      ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
    expect(scanned('import type { Message } from "discord.js";')).toEqual(["discord.js"]);
    expect(scanned('let m: import("discord.js").Message;')).toEqual(["discord.js"]);
    expect(scanned('export { x } from "./config.js";')).toEqual(["./config.js"]);

    const graph: ImportGraph = new Map([
      ["src/llm/direct.ts", ["discord.js"]],
      ["src/llm/indirect.ts", ["src/helper.ts"]],
      ["src/helper.ts", ["src/discord/context.ts"]],
      ["src/store/usesConfig.ts", ["src/platform/config.ts"]],
      ["src/llm/usesStore.ts", ["src/store/history.ts"]],
      ["src/pipeline/pipeline.ts", ["src/index.ts"]],
      ["src/platform/usesPrompts.ts", ["src/prompts/prompts.ts", "src/platform/time.ts"]],
    ]);
    expect(violations(graph)).toEqual([
      `${RULES[0]?.name}: src/llm/direct.ts → discord.js`,
      `${RULES[0]?.name}: src/llm/indirect.ts → src/helper.ts → src/discord/context.ts`,
      `${RULES[1]?.name}: src/llm/usesStore.ts → src/store/history.ts`,
      `${RULES[4]?.name}: src/pipeline/pipeline.ts → src/index.ts`,
      `${RULES[6]?.name}: src/platform/usesPrompts.ts → src/prompts/prompts.ts`,
    ]);
  });

  it("keep the leaves, the assembly, the console and the entry points' helpers in their places", () => {
    const graph: ImportGraph = new Map([
      // A leaf may use the platform and another leaf, not a part above it (as the wording once took the chat
      // gate's and the store's types).
      ["src/wording/wording.ts", ["src/platform/errors.ts", "src/tasks/tasks.ts", "src/discord/chatGate.ts"]],
      ["src/tasks/tasks.ts", ["src/store/settings.ts"]],
      // The assembly and the console may not reach Discord code, even through a type-only import of a helper.
      ["src/assembly/reload.ts", ["src/assembly/app.ts"]],
      ["src/assembly/app.ts", ["commands/index.ts"]],
      ["src/assembly/parentLink.ts", ["src/discord/deployCommands.ts"]],
      ["src/console.ts", ["src/assembly/app.ts"]],
      // Only the entry points import the assembly and src/entry/.
      ["src/discord/createBot.ts", ["src/assembly/app.ts", "src/entry/startupError.ts"]],
      ["src/index.ts", ["src/assembly/app.ts", "src/entry/startupError.ts"]],
      ["commands/index.ts", []],
    ]);
    const leaves = rule("the leaves").name;
    const assembly = rule("the assembly").name;
    expect(violations(graph)).toEqual([
      `${leaves}: src/wording/wording.ts → src/discord/chatGate.ts`,
      `${leaves}: src/tasks/tasks.ts → src/store/settings.ts`,
      `${assembly}: src/assembly/reload.ts → src/assembly/app.ts → commands/index.ts`,
      `${assembly}: src/assembly/app.ts → commands/index.ts`,
      `${assembly}: src/assembly/parentLink.ts → src/discord/deployCommands.ts`,
      `${rule("the console").name}: src/console.ts → src/assembly/app.ts → commands/index.ts`,
      `${rule("in the bot, only the entry points import the assembly").name}: src/discord/createBot.ts → src/assembly/app.ts`,
      `${rule("in the bot, only the entry points import their helpers").name}: src/discord/createBot.ts → src/entry/startupError.ts`,
    ]);
  });

  it("keep node-llama-cpp inside the in-process runtime, whichever way it is reached", () => {
    const direct = rule("in the bot, only src/llm/inProcess/").name;
    const opener = rule("only the runtime factory").name;
    const bypass = rule("no path from the bot").name;
    const graph: ImportGraph = new Map([
      // As it should be: the factory opens the folder, and only the folder imports node-llama-cpp.
      ["src/assembly/app.ts", ["src/llm/openModel.ts"]],
      ["src/llm/openModel.ts", ["src/llm/inProcess/model.ts", "src/llm/llm.ts"]],
      ["src/llm/inProcess/model.ts", ["node-llama-cpp", "src/llm/llm.ts"]],
      ["src/llm/llm.ts", []],
      // A type-only import of the folder, as the config module once had.
      ["src/platform/config.ts", ["src/llm/inProcess/model.ts"]],
      // An entry point importing node-llama-cpp itself, as src/modelCli.ts once did.
      ["src/modelCli.ts", ["node-llama-cpp/dist/index.js"]],
      // A helper outside the folder that imports node-llama-cpp, reached by a file that imports it.
      ["src/pipeline/pipeline.ts", ["src/text/tokens.ts"]],
      ["src/text/tokens.ts", ["node-llama-cpp"]],
      // The bench may measure the runtime itself.
      ["bench/run.ts", ["node-llama-cpp", "src/llm/inProcess/model.ts"]],
    ]);
    expect(violations(graph)).toEqual([
      `${rule("the platform").name}: src/platform/config.ts → src/llm/inProcess/model.ts`,
      `${direct}: src/modelCli.ts → node-llama-cpp/dist/index.js`,
      `${direct}: src/text/tokens.ts → node-llama-cpp`,
      `${opener}: src/platform/config.ts → src/llm/inProcess/model.ts`,
      `${bypass}: src/modelCli.ts → node-llama-cpp/dist/index.js`,
      `${bypass}: src/pipeline/pipeline.ts → src/text/tokens.ts → node-llama-cpp`,
      `${bypass}: src/text/tokens.ts → node-llama-cpp`,
    ]);
  });
});
