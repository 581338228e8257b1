# moodbot: one small language model on the CPU, in one Node.js process.
# The image is built in three stages so that the final one holds the compiled JavaScript and the production
# dependencies only: no TypeScript, no compiler, no build tools. deploy/container-smoke.sh runs the same install
# and start steps outside Docker in CI (no image is built there; see README, "Running in a container").

# --- build: compile the TypeScript once, at image build time -------------------------------------------------
FROM node:20-slim AS build
WORKDIR /build
# sqlite3 builds its native addon from source.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
    && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# npm ci cannot be used: node-llama-cpp's lock entries for other platforms are never complete.
RUN npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json deploy-commands.ts ./
COPY src src
COPY commands commands
COPY prompts prompts
RUN npm run build

# --- deps: production dependencies only -------------------------------------------------------------------------
FROM node:20-slim AS deps
WORKDIR /build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
    && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# The image is CPU only: node-llama-cpp's CUDA and Vulkan binaries (over 600 MB) are left out. The charts draw
# with one weight of Noto Sans SC; the package's eight others (85 MB) are left out too.
RUN npm install --omit=dev --no-audit --no-fund \
    && rm -rf node_modules/@node-llama-cpp/*-cuda* node_modules/@node-llama-cpp/*-vulkan* \
    && find node_modules/@expo-google-fonts/noto-sans-sc -name '*.ttf' ! -name 'NotoSansSC_400Regular.ttf' -delete

# --- runtime ----------------------------------------------------------------------------------------------------
FROM node:20-slim
WORKDIR /app
COPY --from=deps /build/node_modules node_modules
COPY --from=build /build/dist ./
COPY package.json ./
RUN mkdir -p /app/models /app/data && chown node:node /app/models /app/data
USER node
VOLUME ["/app/models", "/app/data"]
ENV NODE_ENV=production
ENV MODELS_DIR=/app/models
ENV STORE_URL=sqlite:///app/data/bot.sqlite
ENV METRICS_PORT=9464
ENV LLM_GPU=off
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=10m --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:'+process.env.METRICS_PORT+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node itself, not npm start: npm does not pass SIGHUP (reload the prompts) on, and it adds a process.
CMD ["node", "--max-semi-space-size=2", "--expose-gc", "src/index.js"]
