/**
 * The Node.js flags every process of ours runs with: each npm script that starts one (npm start, console, bench,
 * eval…) and each shard child. package.json repeats them in its scripts, and a test keeps the two in step.
 *
 * node-llama-cpp gives every evaluation a sampler whose native part holds one entry per vocabulary token (1.8 MB
 * for Qwen2.5's 151,936) until V8 collects the small JavaScript object that owns it. V8 cannot see that memory,
 * and with its default 16 MB young generation it collected none of them in 320 sentiment passes: 541 MB held.
 * A 2 MB young generation collects them every few passes (about 46 MB held over the same run), and keeps the
 * process itself smaller.
 */
export const NODE_RUNTIME_FLAGS: readonly string[] = ["--max-semi-space-size=2"];

/** The runtime flags a process was started without, judged from its Node.js command line. */
export function missingRuntimeFlags(execArgv: readonly string[]): string[] {
  return NODE_RUNTIME_FLAGS.filter((flag) => !execArgv.includes(flag));
}
