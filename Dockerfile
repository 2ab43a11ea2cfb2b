# Build stage: compile TypeScript with the locked dev dependencies.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN npx tsc -p tsconfig.json

# Runtime stage: production dependencies and the compiled daemon only.
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/src ./dist/src
# The UNIX socket lives on a volume shared with Postfix; the default MILTER_SOCKET is /socket/sos-milter.
RUN mkdir -p /socket && chown node:node /socket
VOLUME ["/socket"]
USER node
ENTRYPOINT ["node", "/app/dist/src/cli/main.js"]
