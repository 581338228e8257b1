// Reads the Dockerfile and prints, as shell assignments, the steps deploy/container-smoke.sh repeats outside
// Docker: the build command, the production install command, the runtime environment and the start command.
// Reading them from the Dockerfile keeps the smoke test and the image from drifting apart.
import { readFileSync } from "node:fs";

const dockerfile = readFileSync(process.argv[2] ?? "Dockerfile", "utf8").replace(/\\\n\s*/g, " ");
const stages = dockerfile.split(/^FROM /m).slice(1);
const stage = (name) => stages.find((text) => text.split("\n")[0].includes(` AS ${name}`));
const final = stages.at(-1) ?? "";
const runs = (text) => [...(text ?? "").matchAll(/^RUN (npm .+)$/gm)].map((match) => match[1].trim());

const build = runs(stage("build")).find((command) => command.startsWith("npm run build"));
const install = runs(stage("deps")).find((command) => command.startsWith("npm install"));
const env = [...final.matchAll(/^ENV (\w+)=(.*)$/gm)].map(([, name, value]) => `${name}=${value.trim()}`);
const cmd = final.match(/^CMD (\[.*\])$/m)?.[1];
if (!build || !install || !cmd) throw new Error("the Dockerfile lacks a build, install or CMD step");

const quote = (text) => `'${text.replaceAll("'", "'\\''")}'`;
process.stdout.write(`BUILD_COMMAND=${quote(build)}\n`);
process.stdout.write(`INSTALL_COMMAND=${quote(install)}\n`);
process.stdout.write(`IMAGE_ENV=(${env.map(quote).join(" ")})\n`);
process.stdout.write(`START_COMMAND=(${JSON.parse(cmd).map(quote).join(" ")})\n`);
