# syntax=docker/dockerfile:1
# sos-milter image: Node.js 24 LTS on Debian 12 (bookworm), running as uid:gid 1000:1000.
#   docker build -t sos-milter .
# The base image is pinned by digest (node 24.18.0, bookworm-slim, multi-arch index) so that a
# build is reproducible; bump tag and digest together (`docker buildx imagetools inspect node:24-bookworm-slim`).
ARG NODE_IMAGE=node:24.18.0-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d

# Build stage: compiles what ships (src/ only, see deploy/container/tsconfig.build.json).
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=optional: better-sqlite3 (a native module) is the audit history's driver on Node 20 only;
# on this image's Node 24 the history uses node:sqlite, so nothing is compiled (README "Audit history").
RUN npm ci --omit=optional --no-audit --no-fund
COPY tsconfig.json ./
COPY deploy/container/tsconfig.build.json ./deploy/container/
COPY src ./src
RUN npx tsc -p deploy/container/tsconfig.build.json

# Runtime stage: production dependencies and the compiled daemon only.
FROM ${NODE_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="sos-milter" \
      org.opencontainers.image.description="SPF-on-submission milter for Postfix and Sendmail" \
      org.opencontainers.image.source="https://github.com/chillout2k/sos-milter" \
      org.opencontainers.image.url="https://github.com/chillout2k/sos-milter" \
      org.opencontainers.image.licenses="GPL-3.0-or-later" \
      org.opencontainers.image.version="${VERSION}"
# NODE_OPTIONS: V8's heap limits (src/daemon/heap-sizing.ts), read only when node starts.
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-old-space-size=192 --max-semi-space-size=4" \
    MILTER_SOCKET=/socket/sos-milter \
    METRICS_LISTEN=:9100
WORKDIR /app
COPY package.json package-lock.json LICENSE ./
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/src ./dist/src
# The UNIX socket lives on a volume shared with Postfix (MILTER_SOCKET=/socket/sos-milter);
# /history takes the audit's SQLite history (compose's `audit` profile mounts a volume there).
# A fresh named volume takes the owner of the directory it is mounted on: without these, root's.
# 1000:1000 is the image's `node` user; numeric, so that runAsNonRoot can verify it.
RUN mkdir -p /socket /history && chown 1000:1000 /socket /history
VOLUME ["/socket"]
USER 1000:1000
# 8020: the milter on TCP when MILTER_SOCKET=inet:8020; 9100: /metrics, /healthz, /readyz.
EXPOSE 8020 9100
# `sos-milter health` asks /healthz where the container's own environment says it is served
# (HEALTH_LISTEN, else METRICS_LISTEN, any port; with neither it connects to MILTER_SOCKET).
# Exec form: no shell, no curl or wget in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "/app/dist/src/cli/main.js", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/dist/src/cli/main.js"]
