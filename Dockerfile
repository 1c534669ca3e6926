# Build stage: compile TypeScript, then keep only production dependencies.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

# Runtime stage: no compiler, no dev dependencies, not root.
FROM node:24-slim
# MALLOC_ARENA_MAX is npm start's: see the CMD below.
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 MALLOC_ARENA_MAX=1
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
USER node
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Node itself is PID 1 so that SIGTERM reaches the graceful shutdown. The flags and MALLOC_ARENA_MAX
# are npm start's, so that memory stays near the cache budget however long an export runs
# (docs/operations.md, "Memory"): a young generation of 2 x 4 MiB (V8 otherwise grows it to 32 MiB and keeps it);
# a full GC once the old generation grows by 10% (V8 otherwise lets it grow up to 4x, holding
# garbage and the evicted pages' bodies); undici's WebAssembly HTTP parser kept on V8's baseline
# compiler (optimising it costs about 30 MiB for a moment, on the first busy second); one glibc malloc
# arena (with a second one, freed memory that V8's background threads left there stayed resident:
# about 10 MiB more at the peak of an export on Node 24).
CMD ["node", "--max-semi-space-size=4", "--heap-growing-percent=10", "--liftoff-only", "dist/server.js"]
