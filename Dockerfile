# The image of the controller and the node agent: `node dist/webhook/main.js` or
# `node dist/agent/main.js` (the manifests choose with `command`).

# ---- build: compile TypeScript, then keep only the production dependencies ----
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency needs an install script at runtime.
RUN npm ci --ignore-scripts
# Sources only (.dockerignore leaves out tests, node_modules and dist).
COPY . .
RUN npm run build && npm prune --omit=dev --ignore-scripts

# ---- runtime: the compiled code and production node_modules, as a non-root user ----
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Numeric, so that Kubernetes' runAsNonRoot can verify it (65534 = nobody).
USER 65534:65534
ENTRYPOINT ["node"]
CMD ["dist/webhook/main.js"]
