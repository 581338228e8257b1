/**
 * The Node.js flags every process of ours runs with: each npm script that starts one (npm start, console, bench,
 * eval…) and each shard child. package.json repeats them in its scripts, and a test keeps the two in step.
 *
 * node-llama-cpp gives every evaluation a sampler whose native part holds one entry per vocabulary token until V8
 * collects the small JavaScript object that owns it, and V8 cannot see that memory:
 * - --max-semi-space-size=2: with V8's default young generation none of them is collected during a busy run; a
 *   2 MB one collects them every few evaluations while evaluations run one at a time.
 * - --expose-gc: when several evaluations share a forward pass, their wrappers outlive young-generation
 *   collections, so the model's owner runs a full collection every few dozen evaluations (src/llm/inProcess/samplerCollector.ts).
 * test/llm/evaluationMemory.test.ts measures both, with and without the flags.
 */
export const NODE_RUNTIME_FLAGS: readonly string[] = ["--max-semi-space-size=2", "--expose-gc"];

/** The runtime flags a process was started without, judged from its Node.js command line. */
export function missingRuntimeFlags(execArgv: readonly string[]): string[] {
  return NODE_RUNTIME_FLAGS.filter((flag) => !execArgv.includes(flag));
}
