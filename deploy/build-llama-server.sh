#!/usr/bin/env bash
# Builds llama.cpp's llama-server from the sources node-llama-cpp ships (node_modules/node-llama-cpp/llama/
# gitRelease.bundle), offline, into .cache/llama-server/<commit>/. About 4 minutes on 2 cores, once: a build that is
# already there is kept. Prints the binary's path on its last line.
#
# Needs git, cmake and a C++ compiler (Debian: apt-get install git cmake g++).
set -euo pipefail
cd "$(dirname "$0")/.."

bundle=node_modules/node-llama-cpp/llama/gitRelease.bundle
for tool in git cmake c++; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "build-llama-server: $tool is missing; install it (Debian: apt-get install git cmake g++)" >&2
    exit 1
  fi
done
if [ ! -f "$bundle" ]; then
  echo "build-llama-server: $bundle is missing; run npm install first" >&2
  exit 1
fi

commit=$(git bundle list-heads "$bundle" | awk 'NR==1 { print substr($1, 1, 7) }')
cache=".cache/llama-server/$commit"
binary="$cache/build/bin/llama-server"
if [ -x "$binary" ]; then
  echo "$binary"
  exit 0
fi

rm -rf "$cache.partial"
mkdir -p "$(dirname "$cache")"
git clone --quiet "$bundle" "$cache.partial"
echo "build-llama-server: building llama-server $commit into $cache (about 4 minutes on 2 cores, once)" >&2
log="$cache.partial/moodbot-build.log"
if ! (
  cd "$cache.partial"
  git -c advice.detachedHead=false checkout --quiet "$commit"
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF
  cmake --build build --target llama-server -j "$(nproc 2>/dev/null || echo 2)"
) >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "build-llama-server: the build failed; its whole log is $log" >&2
  exit 1
fi
rm -rf "$cache"
mv "$cache.partial" "$cache"
echo "$binary"
