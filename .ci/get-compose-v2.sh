#!/usr/bin/env bash
# Fetches Docker Compose v2 (the Go CLI plugin) from Debian trixie into DEST without touching the
# system's apt sources: a private apt config downloads the .deb, dpkg -x unpacks it, and the
# plugin lands in DEST/cli-plugins/docker-compose (use it with DOCKER_CONFIG=DEST).
# Signatures are checked with the stock Debian archive keyring. Idempotent: an existing, working
# plugin is kept. Usage: .ci/get-compose-v2.sh DEST
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DEST" >&2; exit 2; }
D=$(mkdir -p "$1" && cd "$1" && pwd)
if [ -x "$D/cli-plugins/docker-compose" ] && DOCKER_CONFIG=$D timeout 20 docker compose version >/dev/null 2>&1; then
  DOCKER_CONFIG=$D docker compose version
  exit 0
fi
A=$(mktemp -d /tmp/dpt-compose-apt.XXXXXX)
trap 'rm -rf "$A"' EXIT
M=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$M" ] || M=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$M" ] || { echo "get-compose-v2: no Debian mirror found in apt's sources" >&2; exit 1; }
mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/parts" "$A/prefs" "$A/x"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $M trixie main" >"$A/sources.list"
cat >"$A/apt.conf" <<CONF
Dir::Etc::sourcelist "$A/sources.list";
Dir::Etc::sourceparts "$A/parts";
Dir::Etc::preferencesparts "$A/prefs";
Dir::State::Lists "$A/lists";
Dir::Cache "$A/cache";
CONF
export APT_CONFIG=$A/apt.conf
chmod 755 "$A" # apt's sandbox user must read the download folder
timeout 300 apt-get update -qq
(cd "$A" && timeout 300 apt-get download -qq docker-compose 2>&1 | grep -v 'unsandboxed' || true)
shopt -s nullglob
debs=("$A"/docker-compose_*.deb)
[ ${#debs[@]} -gt 0 ] || { echo "get-compose-v2: the docker-compose .deb was not downloaded" >&2; exit 1; }
for deb in "${debs[@]}"; do dpkg -x "$deb" "$A/x"; done
mkdir -p "$D/cli-plugins"
cp "$A/x/usr/libexec/docker/cli-plugins/docker-compose" "$D/cli-plugins/docker-compose.new"
mv "$D/cli-plugins/docker-compose.new" "$D/cli-plugins/docker-compose"
DOCKER_CONFIG=$D docker compose version
