#!/usr/bin/env bash
# The local four-region stack (DESIGN.md "Local stack"), as processes on 127.0.0.1:
# a Temporal dev server, two S3 endpoints (versitygw), a CNCF Distribution
# registry and a Varnish manifest cache per region, a token server for each
# registry that logs in with tokens (stack/token-server.ts) and, with --with-ferry,
# Ferry's api and worker. Postgres and NATS are the machine's: `up` starts them
# if they are down, `down` leaves them alone.
#
# This script installs what is missing (apt packages, the pinned Go binaries,
# node_modules, the workflow bundle); stack/supervise.ts then starts, stops and
# reports the processes.
#
#   stack/stack.sh up [--with-ferry]   install what is missing, start what is not running, wait for every port
#   stack/stack.sh up --with-ferry --workers-per-region N
#                                      Ferry as production runs it: a control worker and N workers per region queue
#   stack/stack.sh down                stop what `up` started, by pid (TERM, then KILL)
#   stack/stack.sh stop-ferry          stop only the api and workers of `up --with-ferry`
#   stack/stack.sh stop NAME...        stop single components (fault tests); `up` starts them again
#   stack/stack.sh status              one line per component
#   stack/stack.sh install             only install: apt packages, pinned Go binaries, node_modules
#
# Regions, ports and buckets come from LOCAL_REGIONS in domain/config.ts (stack/topology.ts).
# Everything this checkout runs lives in .stack/ (git-ignored):
#   bin/  symlinks to the Go binaries, built once per machine into ${FERRY_CACHE:-~/.cache/ferry}/bin/<name>-<version>/
#   conf/ rendered registry configs and VCLs, token servers' keys (token-<region>/)
#   data/ temporal.db, s3-a/, s3-b/
#   logs/<component>.log                           run/<component>.pid, varnish work dirs
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_DIR=$ROOT/.stack
BIN_DIR=$STACK_DIR/bin
LOG_DIR=$STACK_DIR/logs
CACHE_DIR=${FERRY_CACHE:-$HOME/.cache/ferry}

# prometheus: for promtool, which tests stack/ferry-alerts.yml; its own server is stopped below.
APT_PACKAGES=(skopeo varnish chromium apache2-utils prometheus)
GO_TOOLS=(
  # name    version  module passed to `go install`  [binary it writes, when not the name]
  "temporal  v1.5.1  github.com/temporalio/cli/cmd/temporal"
  "versitygw v1.7.0  github.com/versity/versitygw/cmd/versitygw"
  "registry  v3.1.1  github.com/distribution/distribution/v3/cmd/registry"
  "toxiproxy v2.12.0 github.com/Shopify/toxiproxy/v2/cmd/server server"
)

log() { printf 'stack: %s\n' "$*"; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ---------------------------------------------------------------- install

install_apt_packages() {
  local missing=() package
  for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} (apt)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [[ " ${missing[*]} " == *" varnish "* ]]; then
    # The package starts its own varnishd on :6081 where services may start; ours runs per region.
    as_root invoke-rc.d varnish stop >/dev/null 2>&1 || true
  fi
  if [[ " ${missing[*]} " == *" prometheus "* ]]; then
    # Only promtool is wanted; the package's server would scrape and store for nothing.
    as_root invoke-rc.d prometheus stop >/dev/null 2>&1 || true
  fi
}

ensure_go_on_path() {
  command -v go >/dev/null && return 0
  [ -x /usr/local/go/bin/go ] && PATH=/usr/local/go/bin:$PATH
  command -v go >/dev/null || die "Go (>= 1.25) is needed once per machine to build the stack's pinned binaries; see https://go.dev/doc/install"
}

# Builds module@version into the machine cache once (a lock keeps concurrent checkouts from building twice).
install_go_tool() {
  local name=$1 version=$2 module=$3 built=${4:-$1}
  local dir=$CACHE_DIR/bin/$name-$version
  if [ ! -x "$dir/$name" ]; then
    ensure_go_on_path
    mkdir -p "$CACHE_DIR/bin" "$LOG_DIR"
    (
      flock 9
      [ -x "$dir/$name" ] && exit 0
      log "building $name $version (go install $module@$version; minutes on a cold Go cache, log: $LOG_DIR/build-$name.log)"
      staging=$(mktemp -d "$CACHE_DIR/bin/.$name-$version.XXXXXX")
      if ! CGO_ENABLED=0 GOBIN=$staging go install "$module@$version" >"$LOG_DIR/build-$name.log" 2>&1; then
        tail -n 20 "$LOG_DIR/build-$name.log" >&2
        rm -rf "$staging"
        die "building $name $version failed; see $LOG_DIR/build-$name.log"
      fi
      mkdir -p "$dir"
      mv "$staging/$built" "$dir/$name"
      rm -rf "$staging"
    ) 9>"$CACHE_DIR/bin/.$name-$version.lock"
  fi
  ln -sfn "$dir/$name" "$BIN_DIR/$name"
}

install_node_modules() {
  local marker=$ROOT/node_modules/.package-lock.json
  [ -f "$marker" ] && [ ! "$ROOT/package-lock.json" -nt "$marker" ] && return 0
  log "npm ci"
  if ! (cd "$ROOT" && npm ci --no-audit --no-fund >"$LOG_DIR/npm-ci.log" 2>&1); then
    # npm ci refuses a lock that lacks other platforms' optional packages (e.g. @swc/core-darwin-*),
    # which happens when the lock was written against a registry that does not carry them.
    # npm install --no-save installs the same pinned tree and leaves package-lock.json alone.
    grep -m 3 -E '^npm error (Missing|code)' "$LOG_DIR/npm-ci.log" | sed 's/^/stack:   /'
    log "npm ci failed (log: $LOG_DIR/npm-ci.log); installing from the lock with npm install --no-save"
    (cd "$ROOT" && npm install --no-save --no-audit --no-fund)
  fi
}

# The workflow bundle, built once here rather than at every worker start (workers/bundle.ts).
build_workflow_bundle() {
  log "building the workflow bundle"
  (cd "$ROOT" && npm run --silent build:workflows >"$LOG_DIR/build-workflows.log" 2>&1) ||
    die "building the workflow bundle failed; see $LOG_DIR/build-workflows.log"
}

install_all() {
  mkdir -p "$BIN_DIR" "$LOG_DIR"
  install_apt_packages
  local tool
  for tool in "${GO_TOOLS[@]}"; do
    # shellcheck disable=SC2086 # split "name version module"
    install_go_tool $tool
  done
  install_node_modules
  build_workflow_bundle
}

# ---------------------------------------------------------------- commands

# FERRY_TEMPORAL_STORE=postgres runs the Temporal server the pinned CLI embeds on
# the machine's Postgres (stack/components.ts); its binaries are built here.
install_temporal_server() {
  [ "${FERRY_TEMPORAL_STORE:-sqlite}" = postgres ] || return 0
  local version
  version=$(sed -n "s/^export const TEMPORAL_SERVER_VERSION = '\(v[0-9.]*\)';/\1/p" "$ROOT/stack/components.ts")
  [ -n "$version" ] || die "stack/components.ts declares no TEMPORAL_SERVER_VERSION"
  install_go_tool temporal-server "$version" go.temporal.io/server/cmd/server server
  install_go_tool temporal-sql-tool "$version" go.temporal.io/server/cmd/tools/sql sql
}

case "${1:-}" in
  install) install_all ;;
  up)
    install_all
    install_temporal_server
    ;;
  down | stop-ferry | stop | status) install_node_modules ;;
  *) die "usage: stack/stack.sh up [--with-ferry [--workers-per-region N]] | down | stop-ferry | stop NAME... | status | install" ;;
esac
[ "$1" = install ] && exit 0
# Everything after installing is the supervisor's: stack/supervise.ts.
cd "$ROOT"
PATH=$PATH:/usr/local/go/bin exec node --import tsx stack/supervise.ts "$@"
