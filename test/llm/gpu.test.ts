import { getLlama, type Llama, LlamaLogLevel } from "node-llama-cpp";
import { describe, expect, it } from "vitest";
import { gpuOption, loadModel } from "../../src/llm/inProcess/model.js";
import { createLogger } from "../../src/platform/logger.js";
import { LogCapture } from "../../testkit/harness.js";
import { testModelOptions, tinyModel } from "../../testkit/models.js";

describe("LLM_GPU", () => {
  it("maps each setting to node-llama-cpp's gpu option", () => {
    expect(gpuOption("auto")).toBe("auto");
    expect(gpuOption("cuda")).toBe("cuda");
    expect(gpuOption("vulkan")).toBe("vulkan");
    expect(gpuOption("metal")).toBe("metal");
    expect(gpuOption("off")).toBe(false);
  });

  /*
   * What node-llama-cpp itself opens for a setting on this machine, with the bot's options (prebuilt binaries
   * only): the backend, or undefined when that backend cannot start here. The test then holds on a machine with a
   * working GPU as on one without.
   */
  async function machineOffers(gpu: "auto" | "cuda"): Promise<string | undefined> {
    let llama: Llama;
    try {
      llama = await getLlama({ gpu, build: "never", logLevel: LlamaLogLevel.error });
    } catch {
      // No driver or no binary for this backend: the answer, not a failure.
      return undefined;
    }
    try {
      return llama.gpu === false ? "cpu" : llama.gpu;
    } finally {
      await llama.dispose();
    }
  }

  it("runs where the machine can: auto quietly, a named backend it cannot start on the CPU with a warning", async () => {
    const path = await tinyModel();
    for (const gpu of ["auto", "cuda"] as const) {
      const offered = await machineOffers(gpu);
      const expected = offered ?? "cpu";
      const logs = new LogCapture();
      const llm = await loadModel(
        testModelOptions({ path, gpu, logger: createLogger({ level: "info", destination: logs.stream }) }),
      );
      try {
        expect(llm.backend).toBe(expected);
        expect(logs.find("model loaded")[0]).toMatchObject({ backend: expected });
        const warnings = logs.lines.filter((line) => line.level === 40);
        if (offered === undefined) expect(warnings[0]?.msg).toMatch(/LLM_GPU=cuda is not available/);
        else expect(warnings).toEqual([]);
        expect((await llm.classifySentiment(`works on ${expected}`)).label).toBeDefined();
      } finally {
        await llm.close();
      }
    }
  });
});
