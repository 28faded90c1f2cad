# dpt image: one image for the coordinator and the workers (`docker compose up`, see docs/cluster.md).
# Stage 1 compiles the TypeScript; stage 2 is the slim runtime with production dependencies only.
# CI cannot reach a registry from inside containers, so .ci/docker-cluster.sh builds an equivalent
# image from the host's Node instead; this file is what users build.

FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the package's own `prepare` script would run the build before the sources are
# copied; the only dependency script (msgpackr-extract) just probes for its prebuilt binary.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
# The dashboard's static files are not TypeScript: put them beside the compiled module that
# serves them (coordinator/dashboard-assets.ts looks there first).
RUN npm run build && if [ -d coordinator/dashboard ]; then cp -r coordinator/dashboard dist/coordinator/; fi

FROM node:22-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would call tsc, a dev dependency that is not installed here.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY data ./data
# /data: the dataset mount point. /output: model and metrics; owned by the runtime user so that
# a fresh named volume mounted there inherits a writable directory.
RUN mkdir -p /data /output && chown node:node /output
USER node
EXPOSE 8787
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["--help"]
