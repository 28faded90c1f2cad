#!/usr/bin/env bash
# The compose cluster, for real. Validates docker-compose.yml with Compose v2 and Swarm's loader,
# starts a private Docker engine inside a network namespace this script creates, and builds two
# images (containers here cannot reach a registry): the shipped Dockerfile against a stand-in base
# (the host's node and npm with an offline npm cache, tagged node:22-slim), and, as
# docker-notes.md recommends, one straight from the host's Node and the built dist/. Then:
#   (a) compose up --scale worker=3 trains the bundled data; the model and the metrics on the
#       output volume are checked;
#   (b) a worker is `docker kill`ed mid-run and another crashes; training still completes and
#       the crashed one is restarted and rejoins;
#   (c) the same file, unchanged, on a one-node Swarm (docker stack deploy) trains to completion.
# Everything is torn down on any exit: compose down -v, swarm left, dockerd stopped by PID, the
# namespace deleted, the temp folder removed.
#
# Runs as root on Debian 12, after `npm ci` and `npm run build` on the host (uses dist/).
# Env: KEEP=1 keeps the engine and the temp folder for debugging (prints how to clean up).
# Prints timings and a final `N passed, M failed` line; exits non-zero on any failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

NS=dpt-dock-$$
PROJECT=dptci$$
STACK=dptswarm$$
SWARM_ADDRESS=10.203.0.1
W=$(mktemp -d /tmp/dpt-docker.XXXXXX)
W_IS_TMPFS=""
IMAGE=dpt:ci
SHIPPED_IMAGE=dpt:shipped
BASE_IMAGE=dpt-ci-node-base:local
COMPOSE_DIR=$ROOT/.tmp/compose
SECRET=$ROOT/secrets/dpt_token
export DOCKER_HOST=unix://$W/docker.sock
export DOCKER_CONFIG=$COMPOSE_DIR
export DPT_IMAGE=$IMAGE
DPID=""
CREATED_SECRET=""
PASSED=0
FAILED=0
T_START=$(date +%s%N)

now_ms() { echo $(($(date +%s%N) / 1000000)); }
since() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f s", (b - a) / 1e9 }'; }
log() { printf '[docker-cluster %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
pass() {
  PASSED=$((PASSED + 1))
  log "PASS $*"
}
fail() {
  FAILED=$((FAILED + 1))
  log "FAIL $*"
}
in_ns() { nsenter --net="/run/netns/$NS" "$@"; } # not `ip netns exec`: it remounts /sys and hides the cgroups dockerd needs
compose() { timeout "${COMPOSE_TIMEOUT:-300}" docker compose -p "$PROJECT" "$@"; }

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [ -n "${KEEP:-}" ]; then
    log "KEEP set: engine PID $DPID, DOCKER_HOST=$DOCKER_HOST, netns $NS, folder $W left running"
    log "clean up with: kill $DPID; ip netns del $NS; rm -rf $W"
  else
    local t
    t=$(date +%s%N)
    if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
      compose down -v --remove-orphans -t 5 >/dev/null 2>&1
      if [ "$(timeout 10 docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" = active ]; then
        timeout 60 docker stack rm "$STACK" >/dev/null 2>&1
        timeout 60 docker swarm leave --force >/dev/null 2>&1
      fi
      log "containers removed in $(since "$t"); stopping dockerd (PID $DPID)"
      kill -TERM "$DPID" 2>/dev/null
      for _ in $(seq 1 60); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.5; done
      if kill -0 "$DPID" 2>/dev/null; then
        log "dockerd (PID $DPID) ignored SIGTERM for 30 s; sending SIGKILL"
        kill -KILL "$DPID" 2>/dev/null
      fi
      wait "$DPID" 2>/dev/null
      # dockerd's own containerd exits with it; after a SIGKILL it may not, so stop it by its PID.
      local cpid
      cpid=$(cat "$W/exec/containerd/containerd.pid" 2>/dev/null || true)
      if [ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null; then
        kill -TERM "$cpid" 2>/dev/null
        for _ in $(seq 1 20); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$cpid" 2>/dev/null
      fi
      log "dockerd stopped after $(since "$t")"
    fi
    # Mounts an interrupted engine may leave under the temp folder (overlays, netns files).
    awk -v w="$W/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
    ip netns del "$NS" 2>/dev/null
    [ -n "$W_IS_TMPFS" ] && umount -l "$W"
    rm -rf "$W"
    [ -n "$CREATED_SECRET" ] && rm -f "$SECRET"
    log "teardown took $(since "$t")"
  fi
  if [ "$rc" -ne 0 ] && [ "$FAILED" -eq 0 ]; then
    FAILED=1
    log "FAIL aborted with exit code $rc (see the messages above)"
  fi
  log "total wall time $(since "$T_START")"
  echo "$PASSED passed, $FAILED failed"
  if [ "$FAILED" -gt 0 ]; then exit 1; fi
  exit 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Setup: tools, Compose v2, the token, the engine, the image.

[ "$(id -u)" = 0 ] || { log "must run as root (it starts dockerd in a network namespace)"; exit 2; }
[ -f dist/cli/main.js ] || { log "dist/cli/main.js is missing: run npm ci and npm run build first"; exit 2; }
for tool in ip nsenter node npm; do command -v "$tool" >/dev/null || { log "$tool is missing"; exit 2; }; done

t=$(date +%s%N)
if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
  log "installing docker.io"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq
  timeout 900 apt-get install -y -qq docker.io >/dev/null
fi
.ci/get-compose-v2.sh "$COMPOSE_DIR" >/dev/null
# Every docker call is bounded: a wedged engine fails the run instead of hanging it.
DOCKER_BIN=$(command -v docker)
docker() { timeout "${DOCKER_TIMEOUT:-300}" "$DOCKER_BIN" "$@"; }
log "tools ready in $(since "$t"): $(docker --version | head -1); $(docker compose version)"

if [ ! -s "$SECRET" ]; then
  # A random token per run; the container's non-root user reads the bind-mounted file, so it is
  # world-readable inside a folder only root can enter.
  mkdir -p "$(dirname "$SECRET")"
  chmod 700 "$(dirname "$SECRET")"
  head -c 24 /dev/urandom | base64 | tr '+/' '-_' >"$SECRET"
  chmod 644 "$SECRET"
  CREATED_SECRET=1
fi
read -r secret_mode secret_owner < <(stat -c '%a %u' "$SECRET")
if [ "$secret_owner" != 1000 ] && [ $((8#$secret_mode & 4)) -eq 0 ]; then
  log "$SECRET (mode $secret_mode, owner $secret_owner) is unreadable for the containers' user (uid 1000): chmod 644 it (see docs/cluster.md)"
  exit 2
fi
TOKEN=$(tr -d '\n' <"$SECRET")

# The loaders users run; neither needs an engine. docker compose reads docker-compose.yml and
# docker-compose.override.yml; docker stack deploy reads the named file with the Compose v3 loader.
if config_out=$(timeout 60 docker compose config -q 2>&1); then
  pass "docker compose config -q accepts docker-compose.yml + docker-compose.override.yml"
else
  fail "docker compose config -q: $config_out"
fi
condition=$(timeout 60 docker compose config --format json 2>/dev/null |
  node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => { try { console.log(JSON.parse(s).services.worker.depends_on.coordinator.condition); } catch { console.log("unreadable"); } });')
if [ "$condition" = service_healthy ]; then
  pass "docker compose: the worker depends on the coordinator being service_healthy"
else
  fail "docker compose: the worker's depends_on condition is $condition"
fi
if stack_out=$(DPT_IMAGE=$IMAGE timeout 60 docker stack config -c docker-compose.yml 2>&1 >/dev/null); then
  pass "docker stack config -c docker-compose.yml (Swarm's loader) accepts the file unchanged"
else
  fail "docker stack config -c docker-compose.yml: $stack_out"
fi

t=$(date +%s%N)
# The engine's state lives in memory (a tmpfs on the temp folder, ~1 GB at most): on a busy disk,
# deleting the same layers from ext4 took half a minute.
if mount -t tmpfs -o size=4g,mode=700 dpt-docker "$W"; then W_IS_TMPFS=1; fi
ip netns add "$NS"
ip -n "$NS" link set lo up
mkdir -p "$W/data" "$W/exec"
nsenter --net="/run/netns/$NS" dockerd --data-root "$W/data" --exec-root "$W/exec" --pidfile "$W/dockerd.pid" \
  -H "$DOCKER_HOST" >"$W/dockerd.log" 2>&1 &
DPID=$!
deadline=$(($(now_ms) + 60000))
until timeout 3 docker version >/dev/null 2>&1; do
  if ! kill -0 "$DPID" 2>/dev/null || [ "$(now_ms)" -gt "$deadline" ]; then
    tail -20 "$W/dockerd.log"
    log "dockerd did not come up within 60 s"
    exit 1
  fi
  sleep 0.5
done
log "engine $(docker version --format '{{.Server.Version}}') (storage $(docker info --format '{{.Driver}}')) up in $(since "$t") (PID $DPID, netns $NS)"

# The image the CI way: a base of the host's node binary and its libraries, then the app as the
# shipped Dockerfile's runtime stage lays it out (/app/dist, production node_modules, /output
# owned by the node user, the same USER/ENV/ENTRYPOINT lines).
t=$(date +%s%N)
R=$W/rootfs
mkdir -p "$R/usr/bin" "$R/tmp" "$R/etc" "$R/home/node"
chmod 1777 "$R/tmp"
cp /usr/bin/node "$R/usr/bin/"
for l in $(ldd /usr/bin/node | grep -o '/lib[^ ]*'); do
  mkdir -p "$R$(dirname "$l")"
  cp -L "$l" "$R$l"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\nnode:x:1000:\n' >"$R/etc/group"
tar -C "$R" -c . | timeout 120 docker import - "$BASE_IMAGE" >/dev/null
C=$W/ctx
mkdir -p "$C/app" "$C/output"
cp -a package.json package-lock.json dist data "$C/app/"
# As the Dockerfile's build stage does: the dashboard's static files beside the compiled module.
if [ -d coordinator/dashboard ]; then cp -a coordinator/dashboard "$C/app/dist/coordinator/"; fi
(cd "$C/app" && timeout 300 npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund >/dev/null)
{
  echo "FROM $BASE_IMAGE"
  echo 'WORKDIR /app'
  echo 'COPY app/ /app/'
  echo 'COPY --chown=1000:1000 output/ /output/'
  # The runtime stage's configuration, taken from the shipped Dockerfile so the two stay in step.
  awk '/^FROM /{ buf = "" } /^(ENV|USER|EXPOSE|ENTRYPOINT|CMD) /{ buf = buf $0 "\n" } END { printf "%s", buf }' Dockerfile
} >"$C/Dockerfile.ci"
timeout 300 docker build -q -t "$IMAGE" -f "$C/Dockerfile.ci" "$C" >/dev/null 2>"$W/build.log" || {
  cat "$W/build.log"
  exit 1
}
log "image $IMAGE built from the host's node $(node --version) in $(since "$t")"

# The shipped Dockerfile, built for real: its base image (node:22-slim) cannot be pulled here, so a
# stand-in is tagged with that name: the host's node and npm, a shell and the few tools the RUN
# lines use, and the host's npm cache with npm set offline, so that `RUN npm ci` installs from it
# (the cache is complete after the `npm ci` CI runs first). Every instruction of the Dockerfile
# runs as users run it; only the base differs.
t=$(date +%s%N)
S=$W/standin
mkdir -p "$S/usr/local/bin" "$S/usr/local/lib" "$S/usr/bin" "$S/bin" "$S/tmp" "$S/etc" "$S/home/node" "$S/root/.npm"
chmod 1777 "$S/tmp"
cp /usr/bin/node "$S/usr/local/bin/"
cp -a "$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")" "$S/usr/local/lib/npm"
ln -s ../lib/npm/bin/npm-cli.js "$S/usr/local/bin/npm"
tools=(/usr/bin/node)
for tool in sh env mkdir chown cp rm; do
  p=$(readlink -f "$(command -v "$tool")")
  cp "$p" "$S/usr/bin/$tool"
  tools+=("$p")
done
ln -s /usr/bin/sh "$S/bin/sh"
for f in "${tools[@]}"; do
  for l in $(ldd "$f" | grep -o '/lib[^ ]*'); do
    mkdir -p "$S$(dirname "$l")"
    cp -L "$l" "$S$l"
  done
done
printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n' >"$S/etc/passwd"
printf 'root:x:0:\nnode:x:1000:\n' >"$S/etc/group"
cp -a "$(npm config get cache)/_cacache" "$S/root/.npm/"
for base in $(awk '/^FROM /{ print $2 }' Dockerfile | sort -u); do
  tar -C "$S" -c . | timeout 120 docker import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'ENV npm_config_offline=true' - "$base" >/dev/null
done
rm -rf "$S"
if timeout 600 docker build -t "$SHIPPED_IMAGE" . >"$W/shipped-build.log" 2>&1; then
  pass "the shipped Dockerfile builds (both stages; stand-in $(awk '/^FROM /{ print $2 }' Dockerfile | sort -u | tr '\n' ' ')base) in $(since "$t")"
  has_dashboard=no
  if [ -d coordinator/dashboard ]; then has_dashboard=yes; fi
  layout=$(timeout 30 docker run --rm --network none -e "HAS_DASHBOARD=$has_dashboard" --entrypoint node "$SHIPPED_IMAGE" -e '
    const fs = require("node:fs");
    const checks = {
      "runs as node": require("node:os").userInfo().username === "node",
      "/output owned by node": fs.statSync("/output").uid === process.getuid(),
      "dist/cli/main.js": fs.existsSync("/app/dist/cli/main.js"),
      "the dashboard beside dist/coordinator": process.env.HAS_DASHBOARD === "no" || fs.existsSync("/app/dist/coordinator/dashboard/index.html"),
      "production dependencies only": fs.existsSync("/app/node_modules/ws") && !fs.existsSync("/app/node_modules/typescript"),
      "no TypeScript sources": !fs.existsSync("/app/coordinator"),
      "no token": !fs.existsSync("/app/secrets"),
    };
    const bad = Object.entries(checks).filter(([, ok]) => !ok).map(([name]) => name);
    console.log(bad.length === 0 ? "ok" : `missing: ${bad.join(", ")}`);' 2>&1 || true)
  if [ "$layout" = ok ]; then
    pass "the shipped image: non-root, production dependencies only, dist (and the dashboard, if any) in place, no sources or token"
  else
    fail "the shipped image: $layout"
  fi
else
  hint=''
  if grep -q ENOTCACHED "$W/shipped-build.log"; then hint=' (a package is missing from the npm cache: run npm ci first)'; fi
  fail "the shipped Dockerfile does not build$hint: $(grep -v '^ ---> \|^Removing\|DEPRECATED\|buildx\|^ *$' "$W/shipped-build.log" | tail -6 | tr '\n' ' ')"
  log "run (a) uses $IMAGE instead"
  SHIPPED_IMAGE=$IMAGE
fi

# ---------------------------------------------------------------------------------------------
# Helpers for the runs.

# Prints the /status JSON of the coordinator, asked from inside the engine's namespace (the
# published port listens there).
status_json() {
  in_ns timeout 5 node -e '
    fetch("http://127.0.0.1:8787/status", { headers: { authorization: `Bearer ${process.env.T}` }, signal: AbortSignal.timeout(3000) })
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(`HTTP ${r.status}`))))
      .then((t) => process.stdout.write(t), () => process.exit(1));' 2>/dev/null
}

coordinator_id() { compose ps -a -q coordinator; }

# Waits for the coordinator container to exit (deadline in seconds); prints its exit code.
wait_coordinator() {
  local cid code
  cid=$(coordinator_id)
  [ -n "$cid" ] || { echo "none"; return 1; }
  code=$(timeout "$1" docker wait "$cid") || { echo "timeout"; return 1; }
  echo "$code"
}

# check_outputs LABEL EPOCHS CONTAINER: copies model.json and metrics.jsonl off the output volume
# (from the stopped coordinator container) and checks them: a dpt-model with 30 finite weights,
# one step line per step (0..totalSteps-1, finite losses), one eval line per epoch.
check_outputs() {
  local label=$1 epochs=$2 cid=$3 out
  out=$W/$label
  mkdir -p "$out"
  docker cp "$cid:/output/model.json" "$out/model.json" >/dev/null 2>&1 || { echo "no /output/model.json on the output volume"; return 1; }
  docker cp "$cid:/output/metrics.jsonl" "$out/metrics.jsonl" >/dev/null 2>&1 || { echo "no /output/metrics.jsonl on the output volume"; return 1; }
  node - "$out/model.json" "$out/metrics.jsonl" "$epochs" <<'NODE'
const { readFileSync } = require('node:fs');
const [modelPath, metricsPath, epochsText] = process.argv.slice(2);
const problems = [];
const model = JSON.parse(readFileSync(modelPath, 'utf8'));
const isFiniteNumber = (v) => typeof v === 'number' && Number.isFinite(v);
if (model.format !== 'dpt-model') problems.push(`format is ${model.format}`);
if (!Array.isArray(model.weights) || model.weights.length !== 30) problems.push(`weights: ${model.weights?.length} instead of 30`);
else if (!model.weights.every(isFiniteNumber)) problems.push('a weight is not finite');
if (!isFiniteNumber(model.bias)) problems.push('the bias is not finite');
const epochs = Number(epochsText);
const totalSteps = epochs * Math.ceil(model.trainedOn.trainRows / model.trainedOn.batchSize);
if (model.trainedOn.steps !== totalSteps) problems.push(`trainedOn.steps ${model.trainedOn.steps}, expected ${totalSteps}`);
const events = readFileSync(metricsPath, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
const steps = events.filter((e) => e.type === 'step');
const evals = events.filter((e) => e.type === 'eval');
if (steps.length !== totalSteps) problems.push(`${steps.length} step lines, expected ${totalSteps}`);
if (!steps.every((e, i) => e.step === i && isFiniteNumber(e.loss))) problems.push('step lines are not 0..totalSteps-1 with finite losses');
if (steps.at(-1)?.step !== totalSteps - 1) problems.push(`last step ${steps.at(-1)?.step}, expected ${totalSteps - 1}`);
if (evals.length !== epochs) problems.push(`${evals.length} eval lines, expected ${epochs}`);
const last = evals.at(-1);
if (problems.length > 0) {
  console.log(problems.join('; '));
  process.exit(1);
}
console.log(`model ok (30 finite weights); ${steps.length} step lines, last step ${steps.at(-1).step}; train accuracy ${last.trainAccuracy.toFixed(4)}, validation accuracy ${last.valAccuracy?.toFixed(4)}`);
NODE
}

# Every worker container has exited with code 0 (it was told to stop).
check_workers_exited_zero() {
  local deadline ids states
  deadline=$(($(now_ms) + 30000))
  ids=$(compose ps -a -q worker)
  [ -n "$ids" ] || { echo "no worker containers"; return 1; }
  while :; do
    # shellcheck disable=SC2086 # one argument per container id
    states=$(docker inspect --format '{{.Name}} {{.State.Status}} {{.State.ExitCode}}' $ids)
    if ! grep -qv ' exited 0$' <<<"$states"; then
      echo "$(wc -l <<<"$states") workers exited 0"
      return 0
    fi
    if [ "$(now_ms)" -gt "$deadline" ]; then
      echo "workers not all exited 0 after 30 s: $(tr '\n' ';' <<<"$states")"
      return 1
    fi
    sleep 0.5
  done
}

dump_logs() {
  log "last coordinator and worker logs:"
  compose logs --no-color --tail 25 2>&1 | sed 's/^/    /' || true
}

# ---------------------------------------------------------------------------------------------
# (a) Train to completion with 3 workers.

EPOCHS_A=30
t=$(date +%s%N)
log "run (a): up --scale worker=3, $EPOCHS_A epochs, on $SHIPPED_IMAGE"
failed_before=$FAILED
if DPT_IMAGE=$SHIPPED_IMAGE DPT_WORKERS=3 DPT_EPOCHS=$EPOCHS_A DPT_BATCH_SIZE=32 DPT_VAL_SPLIT=0.2 compose up -d --no-build --scale worker=3 >"$W/up-a.log" 2>&1; then
  pass "(a) compose up --scale worker=3 started the coordinator (healthy) and 3 workers"
else
  fail "(a) compose up: $(tail -5 "$W/up-a.log" | tr '\n' ' ')"
fi
code=$(wait_coordinator 180) || true
if [ "$code" = 0 ]; then pass "(a) coordinator exited 0 after $(since "$t")"; else fail "(a) coordinator exit: $code"; fi
joined=$(compose logs --no-color coordinator 2>&1 | grep -c 'joined from' || true)
if [ "$joined" -ge 3 ]; then pass "(a) $joined workers joined by service name"; else fail "(a) $joined workers joined, expected 3"; fi
if msg=$(check_outputs a "$EPOCHS_A" "$(coordinator_id)"); then pass "(a) outputs: $msg"; else fail "(a) outputs: $msg"; fi
if msg=$(check_workers_exited_zero); then pass "(a) $msg (no restart loop)"; else fail "(a) $msg"; fi
# The workers mount no data: each read the coordinator's copy over GET /data (issue #11 item 4).
fetched=$(compose logs --no-color worker 2>&1 | grep -c 'reading the data from http://coordinator:8787/data' || true)
if [ "$fetched" -ge 3 ]; then pass "(a) $fetched workers without a data volume read the data from the coordinator's /data"; else fail "(a) $fetched workers said they read from the coordinator's /data, expected 3"; fi
[ "$FAILED" -eq "$failed_before" ] || dump_logs
compose down -v -t 5 >/dev/null 2>&1 || true
log "run (a) took $(since "$t")"

# ---------------------------------------------------------------------------------------------
# (b) Kill a worker mid-run; training completes on the others.

EPOCHS_B=${EPOCHS_B:-1500}
t=$(date +%s%N)
log "run (b): up --scale worker=3, $EPOCHS_B epochs of batch 16, on $IMAGE; docker kill one worker, crash another"
failed_before=$FAILED
if DPT_WORKERS=3 DPT_EPOCHS=$EPOCHS_B DPT_BATCH_SIZE=16 DPT_VAL_SPLIT=0.2 DPT_STEP_TIMEOUT=5000 compose up -d --no-build --scale worker=3 >"$W/up-b.log" 2>&1; then
  pass "(b) compose up --scale worker=3"
else
  fail "(b) compose up: $(tail -5 "$W/up-b.log" | tr '\n' ' ')"
fi
# Wait (bounded) until /status says training and past step 500, then docker kill a worker.
wait_for_step() {
  local min=$1 deadline s
  deadline=$(($(now_ms) + 90000))
  while [ "$(now_ms)" -lt "$deadline" ]; do
    if s=$(T=$TOKEN status_json); then
      read -r state step total workers < <(node -e '
        try { const s = JSON.parse(process.argv[1]); console.log(s.state, s.step, s.totalSteps, s.workers.length); }
        catch { console.log("unreadable -1 0 0"); }' "$s")
      [ "$state" = training ] && [ "$step" -gt "$min" ] && return 0
      [ "$state" = finished ] && return 1
    elif [ "$(docker inspect --format '{{.State.Running}}' "$(coordinator_id)" 2>/dev/null)" != true ]; then
      state=exited
      return 1
    fi
    sleep 0.2
  done
  return 1
}
state=none
step=-1
total=0
workers=0
worker_ids=$(compose ps -q worker)
read -r -d '' victim crash_victim _ <<<"$worker_ids" || true
if wait_for_step 500 && [ -n "$victim" ]; then
  docker kill "$victim" >/dev/null
  pass "(b) /status said training at step $step of $total with $workers workers; docker kill ${victim:0:12}"
else
  fail "(b) never saw state training past step 500 (state $state, step $step): nothing killed"
fi
# A crash (the worker's node process dies, not a `docker kill`, which the engine treats as a
# deliberate stop) is what the restart policy is for: the container restarts and rejoins.
if [ -n "$crash_victim" ] && wait_for_step $((step + 3000)); then
  init_pid=$(docker inspect --format '{{.State.Pid}}' "$crash_victim")
  node_pid=$(ps -o pid= --ppid "$init_pid" | tr -d ' ' | sed -n 1p)
  if [ -n "$node_pid" ]; then
    kill -KILL "$node_pid"
    pass "(b) crashed worker ${crash_victim:0:12} at step $step (SIGKILL to its node process, PID $node_pid)"
  else
    fail "(b) found no node process under the init (PID $init_pid) of worker ${crash_victim:0:12}"
  fi
else
  fail "(b) no second worker to crash, or training did not reach step $((step + 3000))"
fi
code=$(wait_coordinator 300) || true
if [ "$code" = 0 ]; then pass "(b) coordinator exited 0 after $(since "$t")"; else fail "(b) coordinator exit: $code"; fi
coordinator_log=$(compose logs --no-color coordinator 2>&1 || true)
if grep -q 'left:' <<<"$coordinator_log"; then
  pass "(b) coordinator saw the worker leave: $(grep -m1 'left:' <<<"$coordinator_log" | sed 's/^[^|]*| //')"
else
  fail "(b) the coordinator log has no 'worker N left' line"
fi
if msg=$(check_outputs b "$EPOCHS_B" "$(coordinator_id)"); then pass "(b) outputs after the kill: $msg"; else fail "(b) outputs: $msg"; fi
restarts=$(docker inspect --format '{{.RestartCount}}' "$crash_victim" 2>/dev/null || echo '?')
joins=$(grep -c 'joined from' <<<"$coordinator_log" || true)
if [ "$restarts" != '?' ] && [ "$restarts" -ge 1 ] && [ "$joins" -ge 4 ]; then
  pass "(b) the crashed worker was restarted ($restarts time(s)) and rejoined ($joins joins in all)"
else
  fail "(b) the crashed worker did not come back: restart count $restarts, $joins joins"
fi
log "(b) the docker-killed worker's restart count: $(docker inspect --format '{{.RestartCount}}' "$victim" 2>/dev/null || echo '?') (a docker kill is a deliberate stop)"
[ "$FAILED" -eq "$failed_before" ] || dump_logs
compose down -v -t 5 >/dev/null 2>&1 || true
log "run (b) took $(since "$t")"

# ---------------------------------------------------------------------------------------------
# (c) The same file, unchanged, on a one-node Swarm: docker stack deploy, train to completion.
# Swarm needs an address to advertise: a veth pair with both ends inside the engine's namespace.

EPOCHS_C=30
t=$(date +%s%N)
log "run (c): docker stack deploy -c docker-compose.yml on a one-node Swarm, 3 workers, $EPOCHS_C epochs, on $IMAGE"
failed_before=$FAILED
ip -n "$NS" link add swarm0 type veth peer name swarm1
ip -n "$NS" addr add "$SWARM_ADDRESS/24" dev swarm0
ip -n "$NS" link set swarm0 up
ip -n "$NS" link set swarm1 up
timeout 60 docker swarm init --advertise-addr "$SWARM_ADDRESS" --listen-addr "$SWARM_ADDRESS:2377" >/dev/null
if deploy_out=$(DPT_WORKERS=3 DPT_EPOCHS=$EPOCHS_C DPT_BATCH_SIZE=32 DPT_VAL_SPLIT=0.2 timeout 120 docker stack deploy -c docker-compose.yml "$STACK" 2>&1); then
  pass "(c) docker stack deploy -c docker-compose.yml ($(grep -m1 -o 'Ignoring unsupported options: .*' <<<"$deploy_out" || echo 'no options ignored'))"
else
  fail "(c) docker stack deploy: $deploy_out"
fi
# task_states SERVICE: the current state of each of the service's tasks, one a line.
task_states() { timeout 10 docker service ps "${STACK}_$1" --format '{{.CurrentState}}' 2>/dev/null | awk '{ print $1 }'; }
deadline=$(($(now_ms) + 180000))
coordinator_state=none
while [ "$(now_ms)" -lt "$deadline" ]; do
  coordinator_state=$(task_states coordinator | sed -n 1p)
  case "$coordinator_state" in Complete | Failed | Rejected | Shutdown | Orphaned) break ;; esac
  sleep 1
done
if [ "$coordinator_state" = Complete ]; then pass "(c) the coordinator task completed (exit 0) after $(since "$t")"; else fail "(c) coordinator task state: $coordinator_state"; fi
deadline=$(($(now_ms) + 30000))
while [ "$(now_ms)" -lt "$deadline" ]; do
  states=$(task_states worker | sort | uniq -c | tr -s ' ' | tr '\n' ',')
  [ "$states" = " 3 Complete," ] && break
  sleep 1
done
if [ "$states" = " 3 Complete," ]; then pass "(c) 3 worker tasks completed (exit 0), none restarted"; else fail "(c) worker task states:$states"; fi
swarm_coordinator=$(timeout 10 docker ps -aq --filter "label=com.docker.swarm.service.name=${STACK}_coordinator" | sed -n 1p)
if msg=$(check_outputs c "$EPOCHS_C" "$swarm_coordinator"); then pass "(c) outputs: $msg"; else fail "(c) outputs: $msg"; fi
# Same data and flags as (a): DESIGN.md's determinism gives the same bits on any cluster.
if node -e '
  const [a, c] = process.argv.slice(1).map((path) => JSON.parse(require("node:fs").readFileSync(path, "utf8")));
  process.exit(JSON.stringify([a.weights, a.bias]) === JSON.stringify([c.weights, c.bias]) ? 0 : 1);' "$W/a/model.json" "$W/c/model.json" 2>/dev/null; then
  pass "(c) the Swarm run's model equals the compose run's (a), bit for bit"
else
  fail "(c) the Swarm run's model differs from the compose run's (a)"
fi
if [ "$FAILED" -ne "$failed_before" ]; then
  timeout 20 docker service logs --raw --tail 25 "${STACK}_coordinator" 2>&1 | sed 's/^/    /' || true
  timeout 20 docker service ps --no-trunc "${STACK}_worker" 2>&1 | sed 's/^/    /' || true
fi
timeout 60 docker stack rm "$STACK" >/dev/null 2>&1 || true
# stack rm returns at once; leave the swarm only when its containers are gone (bounded).
deadline=$(($(now_ms) + 60000))
while [ -n "$(timeout 10 docker ps -aq --filter "label=com.docker.stack.namespace=$STACK" 2>/dev/null)" ] && [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.5; done
timeout 60 docker swarm leave --force >/dev/null 2>&1 || true
log "run (c) took $(since "$t")"
