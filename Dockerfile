# The image of the controller and the node agent: `node dist/webhook/main.js` or
# `node dist/agent/main.js` (the manifests choose with `command`).

# ---- build: compile TypeScript and the AF_PACKET addon, then keep only the production dependencies ----
FROM node:24-bookworm-slim AS build
# node-gyp builds native/packet (the agent's ARP/NDP sockets): it needs python3, make and g++.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# Build against the Node headers the image ships (/usr/local/include/node) instead of downloading them.
ENV npm_config_nodedir=/usr/local
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency needs an install script at runtime. Our own install script
# (the addon) needs the sources, so it runs after they are copied.
RUN npm ci --ignore-scripts
# Sources only (.dockerignore leaves out tests, node_modules and dist).
COPY . .
RUN npm run install && npm run build && npm prune --omit=dev --ignore-scripts

# ---- runtime: the compiled code and production node_modules, as a non-root user ----
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The addon alone (agent/layer2/packet-socket.ts loads it from here); not node-gyp's objects.
COPY --from=build /app/native/packet/build/Release/packet.node ./native/packet/build/Release/packet.node
# Numeric, so that Kubernetes' runAsNonRoot can verify it (65534 = nobody).
USER 65534:65534
ENTRYPOINT ["node"]
CMD ["dist/webhook/main.js"]
