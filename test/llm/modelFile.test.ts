import { copyFile, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { loadModel } from "../../src/llm/inProcess/model.js";
import { DEFAULT_MODEL_URI } from "../../src/platform/config.js";
import { testModelOptions, tinyModel } from "../../testkit/models.js";

it("resolves MODEL_URI to the file node-llama-cpp downloaded into MODELS_DIR, with no network", async () => {
  const directory = await mkdtemp(join(tmpdir(), "moodbot-models-"));
  // node-llama-cpp's own file name for the default URI: what the first `npm start` downloads.
  await copyFile(await tinyModel(), join(directory, "hf_Qwen_qwen2.5-0.5b-instruct-q8_0.gguf"));
  const llm = await loadModel(testModelOptions({ path: undefined, uri: DEFAULT_MODEL_URI, directory }));
  expect(llm.modelName).toBe("hf_Qwen_qwen2.5-0.5b-instruct-q8_0.gguf");
  await llm.close();
});
