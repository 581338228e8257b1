import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { join } from "node:path";
import { NODE_RUNTIME_FLAGS } from "../src/entry/runtimeFlags.js";
import { REPO_ROOT } from "../testkit/botProcess.js";
import { ensureBenchModel, ensureShapeModel, LARGER_SHAPES } from "./benchModel.js";

/*
 * `npm run bench -- --model <file.gguf>`: what one model costs here, beside the default model's shape.
 * `npm run bench -- --shapes`: the same for random-weight models of the Qwen2.5 0.5B, 1.5B and 3B shapes (real
 * timings and memory, nonsense text); written to bench/models.json and bench/models.md.
 */

const log = (line: string) => process.stderr.write(`${line}\n`);

/** What bench/modelCost.ts measures of one model, in its own process. */
export interface ModelCost {
  readonly file: string;
  readonly sizeMb: number;
  readonly threads: number;
  readonly loadMs: number;
  readonly rssAfterLoadMb: number;
  readonly peakRssMb: number;
  readonly sentiment: {
    readonly method: string;
    readonly p50Ms: number;
    readonly meanTokens: number;
    readonly burstMessages: number;
    readonly burstMs: number;
    readonly perSecond: number;
  };
  readonly chat: {
    readonly coldFirstTokenMs: number;
    readonly promptTokens: number;
    readonly generatedTokens: number;
    readonly tokensPerSecond: number;
  };
}

export async function benchModels(args: readonly string[]): Promise<void> {
  const modelIndex = args.indexOf("--model");
  const given = modelIndex >= 0 ? args[modelIndex + 1] : undefined;
  if (modelIndex >= 0 && given === undefined)
    throw new Error("--model needs a .gguf file: npm run bench -- --model <file>");
  const files: Array<{ label: string; path: string }> = [
    { label: "Qwen2.5-0.5B shape (the default model's)", path: (await ensureBenchModel(log)).path },
  ];
  if (given !== undefined) files.push({ label: given, path: given });
  if (args.includes("--shapes")) {
    for (const { name, shape } of LARGER_SHAPES) {
      files.push({
        label: `${name.replace("qwen", "Qwen").replace("b", "B")} shape`,
        path: (await ensureShapeModel(name, shape, log)).path,
      });
      log(`${name}: ${shape.layers} layers, hidden ${shape.hidden}`);
    }
  }
  const rows: Array<{ label: string; cost: ModelCost }> = [];
  for (const file of files) {
    log(`measuring ${file.label}…`);
    rows.push({ label: file.label, cost: await measureInOwnProcess(file.path) });
  }
  const table = renderTable(rows);
  process.stdout.write(table);
  if (args.includes("--shapes") && given === undefined) {
    await writeFile(
      join(REPO_ROOT, "bench", "models.json"),
      `${JSON.stringify({ machine: machine(rows), rows }, null, 2)}\n`,
    );
    await writeFile(join(REPO_ROOT, "bench", "models.md"), table);
    log("written to bench/models.json and bench/models.md");
  }
}

function measureInOwnProcess(path: string): Promise<ModelCost> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        ...NODE_RUNTIME_FLAGS,
        "--import",
        import.meta.resolve("tsx"),
        join(REPO_ROOT, "bench", "modelCost.ts"),
        path,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8");
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      const line = stdout.trim().split("\n").at(-1) ?? "";
      if (code === 0 && line.startsWith("{")) resolve(JSON.parse(line) as ModelCost);
      else reject(new Error(`measuring ${path} failed (exit ${code}):\n${stdout}`));
    });
  });
}

function machine(rows: ReadonlyArray<{ cost: ModelCost }>) {
  return {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    threads: rows[0]?.cost.threads,
    node: process.version,
    date: new Date().toISOString().slice(0, 10),
  };
}

function renderTable(rows: ReadonlyArray<{ label: string; cost: ModelCost }>): string {
  const m = machine(rows);
  return [
    `Measured ${m.date} on ${m.cpu}, ${m.cores} cores, LLM_THREADS=${m.threads}, Node ${m.node}; the bot's default settings; random weights unless a file of your own was given.`,
    "",
    "| Model | File | Load | RSS after load / peak | Sentiment p50 (tokens) | 40-message burst | Chat first token, 10-turn history (prompt tokens) | Chat speed |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ...rows
      .map(({ label, cost: c }) =>
        [
          label,
          `${c.file}, ${c.sizeMb} MB`,
          `${(c.loadMs / 1000).toFixed(1)} s`,
          `${c.rssAfterLoadMb} / ${c.peakRssMb} MB`,
          `${c.sentiment.p50Ms} ms (${c.sentiment.meanTokens}, ${c.sentiment.method})`,
          `${(c.sentiment.burstMs / 1000).toFixed(1)} s, ${c.sentiment.perSecond}/s`,
          `${c.chat.coldFirstTokenMs} ms (${c.chat.promptTokens})`,
          `${c.chat.tokensPerSecond} tokens/s (${c.chat.generatedTokens} tokens)`,
        ].join(" | "),
      )
      .map((row) => `| ${row} |`),
    "",
  ].join("\n");
}
