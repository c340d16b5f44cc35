# Chat gateway image. The same image runs the reference authorization server:
#   docker run ... chat-gateway node dist/auth-server/main.js
#
# Build stage: install every dependency, compile, then drop the dev dependencies.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Dependencies first, so that source changes do not invalidate the npm ci layer.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# Runtime stage: compiled code and production dependencies only, run as the unprivileged node user.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=8080 \
    AVATAR_DIR=/app/data/avatars
WORKDIR /app
# Code stays root-owned (read-only for the app); only the data directory belongs to node. A named
# volume mounted on /app/data/avatars starts with this ownership.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN mkdir -p /app/data/avatars && chown -R node:node /app/data
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# A 32 MiB young generation: fewer scavenges and promotions under dialog load (bench/README.md, GC).
CMD ["node", "--max-semi-space-size=32", "dist/main.js"]
