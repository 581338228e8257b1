import { describe, expect, it } from "vitest";
import { gpuOption, loadModel } from "../../src/llm/model.js";
import { createLogger } from "../../src/logger.js";
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

  it("runs on the CPU where no GPU works: auto quietly, a named backend with a warning", async () => {
    const path = await tinyModel();
    for (const gpu of ["auto", "cuda"] as const) {
      const logs = new LogCapture();
      const llm = await loadModel(
        testModelOptions({ path, gpu, logger: createLogger({ level: "info", destination: logs.stream }) }),
      );
      try {
        expect(llm.backend).toBe("cpu");
        expect(logs.find("model loaded")[0]).toMatchObject({ backend: "cpu" });
        const warnings = logs.lines.filter((line) => line.level === 40);
        if (gpu === "cuda") expect(warnings[0]?.msg).toMatch(/LLM_GPU=cuda is not available/);
        else expect(warnings).toEqual([]);
        expect((await llm.classifySentiment("works on the CPU")).label).toBeDefined();
      } finally {
        await llm.close();
      }
    }
  });
});
