# syntax=docker/dockerfile:1
# One image for the Gatehouse CA, agent and gateway: the `gatehouse` CLI as the entry point,
# running as the unprivileged `node` user. docs/deploy.md explains it; docker-compose.yml uses it.
# Not built by the test suite (no Docker daemon there); test/deploy-files.test.ts checks that the
# paths it copies exist, that the compose file's commands are valid CLI commands, and that the
# base image is a Node.js line that has not reached its end of life.
#
# Node.js 26, the active LTS line (LTS from 2026-10-28, end of life 2029-04-30; Node 20, the
# previous base, ended on 2026-04-30), on Debian 13 "trixie", the current Debian stable. Both
# stages use the same image: better-sqlite3 is compiled in the first for the Node.js of the second.
FROM node:26-trixie-slim AS build
WORKDIR /src
# better-sqlite3 compiles from source when npm finds no prebuilt binary for this platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci
# tsconfig.json compiles src, test and bench; only dist/src goes into the image.
COPY tsconfig.json ./
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN npm run build && npm prune --omit=dev

FROM node:26-trixie-slim
ENV NODE_ENV=production
WORKDIR /app
# main.js reads the version from /app/package.json.
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
# Data directories owned by `node`: a new named volume mounted there starts with these owners and
# modes. The CA and identity directories must not be readable by others (the CLI checks).
RUN printf '#!/bin/sh\nexec node /app/dist/src/cli/main.js "$@"\n' > /usr/local/bin/gatehouse \
 && chmod 755 /usr/local/bin/gatehouse \
 && install -d -o node -g node -m 0700 /var/lib/gatehouse/ca /var/lib/gatehouse/gateway \
 && install -d -o node -g node -m 0755 /var/lib/gatehouse/trust
USER node
ENTRYPOINT ["gatehouse"]
CMD ["--help"]
