#!/usr/bin/env bash
# The local three-region stack (DESIGN.md "Local stack"), as processes on 127.0.0.1:
# a Temporal dev server, two S3 endpoints (versitygw), a CNCF Distribution
# registry and a Varnish manifest cache per region and, with --with-ferry,
# Ferry's api and worker. Postgres and NATS are the machine's: `up` starts them
# if they are down, `down` leaves them alone.
#
#   stack/stack.sh up [--with-ferry]   install what is missing, start what is not running, wait for every port
#   stack/stack.sh down                stop what `up` started, by pid (TERM, then KILL)
#   stack/stack.sh stop-ferry          stop only the api and worker of `up --with-ferry`
#   stack/stack.sh stop NAME...        stop single components (fault tests); `up` starts them again
#   stack/stack.sh status              one line per component
#   stack/stack.sh install             only install: apt packages, pinned Go binaries, node_modules
#
# Regions, ports and buckets come from LOCAL_REGIONS in domain/config.ts.
# Everything this checkout runs lives in .stack/ (git-ignored):
#   bin/  symlinks to the Go binaries, built once per machine into ${FERRY_CACHE:-~/.cache/ferry}/bin/<name>-<version>/
#   conf/ rendered registry configs and VCLs      data/ temporal.db, s3-a/, s3-b/
#   logs/<component>.log                           run/<component>.pid, varnish work dirs
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_DIR=$ROOT/.stack
BIN_DIR=$STACK_DIR/bin
CONF_DIR=$STACK_DIR/conf
DATA_DIR=$STACK_DIR/data
LOG_DIR=$STACK_DIR/logs
RUN_DIR=$STACK_DIR/run
CACHE_DIR=${FERRY_CACHE:-$HOME/.cache/ferry}
TSX=$ROOT/node_modules/.bin/tsx

APT_PACKAGES=(skopeo varnish chromium)
GO_TOOLS=(
  # name    version  module passed to `go install`
  "temporal  v1.5.1  github.com/temporalio/cli/cmd/temporal"
  "versitygw v1.7.0  github.com/versity/versitygw/cmd/versitygw"
  "registry  v3.1.1  github.com/distribution/distribution/v3/cmd/registry"
)

POSTGRES_ADDRESS=127.0.0.1:5432
NATS_ADDRESS=127.0.0.1:4222
TEMPORAL_ADDRESS=127.0.0.1:7233
TEMPORAL_UI_ADDRESS=127.0.0.1:8233
START_TIMEOUT=${FERRY_STACK_START_TIMEOUT:-90}
STOP_GRACE=10

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

# ---------------------------------------------------------------- topology

# Fills S3_ENDPOINTS ("name port accessKeyEnv secretKeyEnv"), REGIONS ("name
# registryPort cachePort s3Name bucket") and INGEST_ADDRESS (where registries
# notify the api) from domain/config.ts, so the stack follows the config.
# S3 endpoints are named s3-a, s3-b... in order of first use.
load_topology() {
  local kind rest lines
  lines=$(cd "$ROOT" && "$TSX" --eval "
    import { configSchema, LOCAL_REGIONS } from './domain/config.ts';
    const { ingest } = configSchema.parse({});
    const port = (url: string) => new URL(url).port;
    const endpoints = [...new Set(LOCAL_REGIONS.map((region) => region.s3.endpoint))];
    const s3Name = (endpoint: string) => 's3-' + String.fromCharCode(97 + endpoints.indexOf(endpoint));
    console.log('ingest', ingest.host + ':' + ingest.port);
    for (const endpoint of endpoints) {
      const { s3 } = LOCAL_REGIONS.find((region) => region.s3.endpoint === endpoint)!;
      console.log('s3', s3Name(endpoint), port(endpoint), s3.accessKeyIdEnv, s3.secretAccessKeyEnv);
    }
    for (const region of LOCAL_REGIONS) {
      console.log('region', region.name, port(region.registryUrl), port(region.cachePurgeUrls[0]!), s3Name(region.s3.endpoint), region.s3.bucket);
    }
  ") || die "could not read the regions from domain/config.ts"
  S3_ENDPOINTS=()
  REGIONS=()
  while read -r kind rest; do
    case $kind in
      ingest) INGEST_ADDRESS=$rest ;;
      s3) S3_ENDPOINTS+=("$rest") ;;
      region) REGIONS+=("$rest") ;;
    esac
  done <<<"$lines"
}

# Component names in start order, with the address each answers on ("-" when it has none).
component_table() {
  local entry name port registry_port cache_port
  printf '%s %s\n' temporal "$TEMPORAL_ADDRESS"
  for entry in "${S3_ENDPOINTS[@]}"; do
    read -r name port _ <<<"$entry"
    printf '%s %s\n' "$name" "127.0.0.1:$port"
  done
  for entry in "${REGIONS[@]}"; do
    read -r name registry_port _ <<<"$entry"
    printf '%s %s\n' "registry-$name" "127.0.0.1:$registry_port"
  done
  for entry in "${REGIONS[@]}"; do
    read -r name _ cache_port _ <<<"$entry"
    printf '%s %s\n' "varnish-$name" "127.0.0.1:$cache_port"
  done
  printf '%s %s\n' api "$INGEST_ADDRESS" worker -
}

# ---------------------------------------------------------------- processes

answers() {
  local address=$1
  (exec 3<>"/dev/tcp/${address%:*}/${address##*:}") 2>/dev/null
}

# Prints the pid of a component this checkout started, if it still runs; forgets a stale pid file.
pid_of() {
  local file=$RUN_DIR/$1.pid pid state session
  [ -f "$file" ] || return 0
  pid=$(<"$file")
  # Each component leads its own session (setsid), which also guards against a reused pid.
  if read -r state session < <(ps -o stat=,sid= -p "$pid" 2>/dev/null) && [[ $state != Z* ]] && [ "$session" = "$pid" ]; then
    echo "$pid"
  else
    rm -f "$file"
  fi
}

# True (and says so) when NAME runs from this checkout, or something else already answers on its ADDRESS.
already_running() {
  local name=$1 address=$2 pid
  pid=$(pid_of "$name")
  if [ -n "$pid" ]; then
    log "$name already running (pid $pid)"
  elif [ "$address" != - ] && answers "$address"; then
    log "$name: $address already answers, but not from a process of this checkout's stack; using it"
  else
    return 1
  fi
}

# Closes every descriptor above stderr in the calling (sub)shell, so a daemon does
# not keep its starter's pipes or locks (e.g. `flock LOCK stack.sh up`) open for its lifetime.
close_inherited_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
}

# start NAME ADDRESS COMMAND... : detached, in its own session, logging to .stack/logs/NAME.log.
start() {
  local name=$1 address=$2
  shift 2
  already_running "$name" "$address" && return 0
  printf -- '--- %s starting %s: %s\n' "$(date -u +%FT%TZ)" "$name" "$*" >>"$LOG_DIR/$name.log"
  (cd "$ROOT" && close_inherited_fds && exec setsid nohup "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null) &
  echo $! >"$RUN_DIR/$name.pid"
  STARTED+=("$name")
  log "$name started (pid $!)"
}

fail_start() {
  local name=$1 reason=$2
  printf 'stack: error: %s %s; its log since this start (%s):\n' "$name" "$reason" "$LOG_DIR/$name.log" >&2
  awk '/^--- .* starting / { since = "" } { since = since $0 "\n" } END { printf "%s", since }' "$LOG_DIR/$name.log" 2>/dev/null |
    tail -n 20 | sed 's/^/  | /' >&2
  die "$name failed to start (log: $LOG_DIR/$name.log)"
}

# Waits until ADDRESS answers (and CHECK..., when given, succeeds); fails fast if our process exited.
wait_ready() {
  local name=$1 address=$2
  shift 2
  local deadline=$((SECONDS + START_TIMEOUT))
  until { [ "$address" = - ] || answers "$address"; } && { [ $# -eq 0 ] || "$@" >/dev/null 2>&1; }; do
    if [[ " ${STARTED[*]} " == *" $name "* ]] && [ -z "$(pid_of "$name")" ]; then
      fail_start "$name" "exited"
    fi
    ((SECONDS < deadline)) || fail_start "$name" "did not answer on $address within ${START_TIMEOUT}s"
    sleep 0.2
  done
  if [ "$address" = - ] && [[ " ${STARTED[*]} " == *" $name "* ]]; then
    sleep 2 # no port to ask: give it time to fail on its configuration
    [ -n "$(pid_of "$name")" ] || fail_start "$name" "exited"
  fi
}

# stop PIDS...: TERM each process group, KILL what is left after the grace period.
stop_groups() {
  local pid deadline=$((SECONDS + STOP_GRACE)) remaining
  [ $# -eq 0 ] && return 0
  for pid in "$@"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  while :; do
    remaining=()
    for pid in "$@"; do kill -0 -- "-$pid" 2>/dev/null && remaining+=("$pid"); done
    [ ${#remaining[@]} -eq 0 ] && return 0
    ((SECONDS < deadline)) || break
    sleep 0.2
  done
  log "killing ${remaining[*]} after ${STOP_GRACE}s"
  for pid in "${remaining[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
}

# ---------------------------------------------------------------- components

# render TEMPLATE OUTPUT KEY=VALUE...: replaces {{KEY}}; the output may hold secrets, so it is private.
render() {
  local template=$1 output=$2 text pair key
  shift 2
  text=$(<"$template")
  for pair in "$@"; do
    key=${pair%%=*}
    text=${text//"{{$key}}"/"${pair#*=}"}
  done
  [[ $text != *'{{'* ]] || die "$output: a placeholder of $template has no value"
  (umask 077 && printf '%s\n' "$text" >"$output")
}

ensure_postgres() {
  if ! answers "$POSTGRES_ADDRESS"; then
    [ -d /etc/postgresql ] || die "Postgres is not installed; the stack expects the machine's cluster on $POSTGRES_ADDRESS"
    log "starting the machine's Postgres"
    # shellcheck disable=SC2012 # the directories are plain version numbers
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start
    wait_ready postgres "$POSTGRES_ADDRESS"
  fi
  if [ -z "$(psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'ferry'")" ]; then
    createdb -h 127.0.0.1 -U postgres ferry
    log "created database ferry"
  fi
}

ensure_nats() {
  answers "$NATS_ADDRESS" && return 0
  [ -x /usr/sbin/nats-server ] || die "nats-server is not installed; the stack expects the machine's NATS on $NATS_ADDRESS"
  log "starting the machine's NATS"
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_ready nats "$NATS_ADDRESS"
}

start_temporal() {
  local printed flags
  already_running temporal "$TEMPORAL_ADDRESS" && return 0
  # Search attributes are declared in domain/workflow-contract.ts; start-dev accepts them again on an existing db.
  printed=$(cd "$ROOT" && "$TSX" stack/search-attributes.ts) || die "stack/search-attributes.ts failed"
  mapfile -t flags <<<"$printed"
  # Settings that make the dev server fair to measure (issue 10): SQLite in WAL
  # mode (readers stop blocking the writer; state still survives restarts), and
  # the search-attribute cache no longer re-read from the database on every
  # visibility write (start-dev forces that so new attributes show at once;
  # ours are registered before any workflow starts).
  start temporal "$TEMPORAL_ADDRESS" "$BIN_DIR/temporal" server start-dev \
    --ip 127.0.0.1 --port "${TEMPORAL_ADDRESS##*:}" --ui-port "${TEMPORAL_UI_ADDRESS##*:}" \
    --db-filename "$DATA_DIR/temporal.db" --namespace default --log-level warn \
    --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=NORMAL \
    --dynamic-config-value system.forceSearchAttributesCacheRefreshOnRead=false \
    "${flags[@]}"
}

temporal_healthy() {
  "$BIN_DIR/temporal" operator cluster health --address "$TEMPORAL_ADDRESS" || return 1
  [ "$TEMPORAL_STORE" = postgres ] || answers "$TEMPORAL_UI_ADDRESS"
}

# FERRY_TEMPORAL_STORE=postgres: the Temporal server as production runs it, on
# the machine's Postgres (databases temporal and temporal_visibility), in place
# of the dev server, for measuring the two side by side (README "Benchmark").
# The server is the version the pinned CLI embeds; its schema ships in the module.
TEMPORAL_STORE=${FERRY_TEMPORAL_STORE:-sqlite}
TEMPORAL_SERVER_VERSION=v1.29.1

sql_tool() {
  "$BIN_DIR/temporal-sql-tool" --plugin postgres12 --ep "${POSTGRES_ADDRESS%%:*}" -p "${POSTGRES_ADDRESS##*:}" -u postgres "$@"
}

setup_temporal_schema() {
  local schema db
  schema=$(go env GOMODCACHE)/go.temporal.io/server@$TEMPORAL_SERVER_VERSION/schema/postgresql/v12
  [ -d "$schema" ] || die "the Temporal schema is not in the Go module cache ($schema)"
  for db in temporal temporal_visibility; do
    sql_tool --db "$db" create-database >/dev/null 2>&1 || true
    local dir=$schema/temporal
    [ "$db" = temporal_visibility ] && dir=$schema/visibility
    sql_tool --db "$db" setup-schema -v 0.0 >>"$LOG_DIR/temporal.log" 2>&1 || true
    sql_tool --db "$db" update-schema -d "$dir/versioned" >>"$LOG_DIR/temporal.log" 2>&1 ||
      die "updating the $db schema failed; see $LOG_DIR/temporal.log"
  done
}

start_temporal_postgres() {
  already_running temporal "$TEMPORAL_ADDRESS" && return 0
  ensure_go_on_path
  install_go_tool temporal-server "$TEMPORAL_SERVER_VERSION" go.temporal.io/server/cmd/server server
  install_go_tool temporal-sql-tool "$TEMPORAL_SERVER_VERSION" go.temporal.io/server/cmd/tools/sql sql
  setup_temporal_schema
  mkdir -p "$CONF_DIR/temporal-postgres"
  sed -e "s|@POSTGRES_HOST@|${POSTGRES_ADDRESS%%:*}|; s|@POSTGRES_PORT@|${POSTGRES_ADDRESS##*:}|" \
    -e "s|@FRONTEND_PORT@|${TEMPORAL_ADDRESS##*:}|; s|@DYNAMIC_CONFIG@|$ROOT/stack/temporal-dynamic-config.yaml|" \
    "$ROOT/stack/temporal-postgres.yaml.tmpl" >"$CONF_DIR/temporal-postgres/postgres.yaml"
  start temporal "$TEMPORAL_ADDRESS" "$BIN_DIR/temporal-server" --root / --config "$CONF_DIR/temporal-postgres" --env postgres --allow-no-auth start
  wait_ready temporal "$TEMPORAL_ADDRESS" "$BIN_DIR/temporal" operator cluster health --address "$TEMPORAL_ADDRESS"
  local deadline=$((SECONDS + START_TIMEOUT))
  until "$BIN_DIR/temporal" operator namespace describe -n default --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
    "$BIN_DIR/temporal" operator namespace create -n default --retention 72h --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1 || true
    ((SECONDS < deadline)) || die "the default namespace was not created within ${START_TIMEOUT}s"
    sleep 1
  done
}

# Registers every search attribute domain/workflow-contract.ts declares that the
# namespace lacks: start-dev registers its flags only with a new database, and
# an attribute added since (a rename, say) must exist before workflows set it.
register_search_attributes() {
  local registered name type deadline=$((SECONDS + START_TIMEOUT))
  # Right after a start the frontend may answer health before the namespace is loaded.
  until registered=$("$BIN_DIR/temporal" operator search-attribute list -n default --address "$TEMPORAL_ADDRESS" 2>&1); do
    ((SECONDS < deadline)) || die "listing Temporal's search attributes failed: $registered"
    sleep 0.5
  done
  while IFS='=' read -r name type; do
    grep -qw "$name" <<<"$registered" && continue
    log "registering search attribute $name ($type)"
    "$BIN_DIR/temporal" operator search-attribute create --name "$name" --type "$type" -n default --address "$TEMPORAL_ADDRESS" >/dev/null ||
      die "registering search attribute $name failed"
  done < <(cd "$ROOT" && "$TSX" stack/search-attributes.ts | grep '=')
}

start_s3() {
  local name=$1 port=$2 access_env=$3 secret_env=$4
  mkdir -p "$DATA_DIR/$name"
  # Root credentials through the environment, so they stay out of `ps` and the log.
  ROOT_ACCESS_KEY_ID=${!access_env} ROOT_SECRET_ACCESS_KEY=${!secret_env} \
    start "$name" "127.0.0.1:$port" "$BIN_DIR/versitygw" --port "127.0.0.1:$port" --quiet --health /health posix "$DATA_DIR/$name"
}

s3_credentials() { # S3_NAME -> "port accessKeyEnv secretKeyEnv"
  local entry name rest
  for entry in "${S3_ENDPOINTS[@]}"; do
    read -r name rest <<<"$entry"
    [ "$name" = "$1" ] && echo "$rest" && return 0
  done
}

start_registry() {
  local region=$1 port=$2 s3=$3 bucket=$4 s3_port access_env secret_env
  read -r s3_port access_env secret_env <<<"$(s3_credentials "$s3")"
  render "$ROOT/stack/registry.yml.tmpl" "$CONF_DIR/registry-$region.yml" \
    REGION="$region" HTTP_ADDR="127.0.0.1:$port" HTTP_SECRET="ferry-local-$region" \
    S3_ENDPOINT="http://127.0.0.1:$s3_port" S3_BUCKET="$bucket" \
    S3_ACCESS_KEY="${!access_env}" S3_SECRET_KEY="${!secret_env}" \
    NOTIFICATION_URL="http://$INGEST_ADDRESS/v1/notifications/distribution/$region" \
    INGEST_TOKEN="$FERRY_INGEST_TOKEN"
  # AWS_CA_BUNDLE makes the S3 driver panic at start (DESIGN.md); traces would go to an absent collector.
  start "registry-$region" "127.0.0.1:$port" env -u AWS_CA_BUNDLE OTEL_TRACES_EXPORTER=none \
    "$BIN_DIR/registry" serve "$CONF_DIR/registry-$region.yml"
}

start_varnish() {
  local region=$1 registry_port=$2 cache_port=$3
  render "$ROOT/stack/varnish.vcl.tmpl" "$CONF_DIR/varnish-$region.vcl" \
    BACKEND_HOST=127.0.0.1 BACKEND_PORT="$registry_port" PURGERS='"127.0.0.1";'
  # -F: stay in the foreground so the pid is ours; -j none: no privilege drop, so the
  # checkout's directories need not be readable by the varnish user when run as root.
  start "varnish-$region" "127.0.0.1:$cache_port" varnishd -F -j none \
    -a "127.0.0.1:$cache_port" -T "127.0.0.1:$((cache_port + 10))" -n "$RUN_DIR/varnish-$region" \
    -f "$CONF_DIR/varnish-$region.vcl" -s malloc,64m
}

start_ferry() {
  local entry
  for entry in api/main.ts workers/main.ts; do
    [ -f "$ROOT/$entry" ] || die "--with-ferry: $entry does not exist yet"
  done
  start api "$INGEST_ADDRESS" "$TSX" api/main.ts
  start worker - "$TSX" workers/main.ts
}

# ---------------------------------------------------------------- commands

cmd_up() {
  local with_ferry=false entry name port access_env secret_env registry_port cache_port s3 bucket started_s3=false
  case "${1:-}" in
    --with-ferry) with_ferry=true ;;
    "") ;;
    *) die "unknown option for up: $1 (expected --with-ferry)" ;;
  esac
  local began; began=$(date +%s%N)
  STARTED=()
  install_all
  mkdir -p "$CONF_DIR" "$DATA_DIR" "$LOG_DIR" "$RUN_DIR"
  set -a
  # shellcheck source=/dev/null
  . "$ROOT/stack/local.env"
  set +a
  # Node 20 is supported here; the AWS SDK's notice about its future Node 22 floor is noise in the logs.
  export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
  load_topology
  ensure_postgres
  ensure_nats

  if [ "$TEMPORAL_STORE" = postgres ]; then start_temporal_postgres; else start_temporal; fi
  register_search_attributes
  for entry in "${S3_ENDPOINTS[@]}"; do
    read -r name port access_env secret_env <<<"$entry"
    start_s3 "$name" "$port" "$access_env" "$secret_env"
    [[ " ${STARTED[*]} " == *" $name "* ]] && started_s3=true
    wait_ready "$name" "127.0.0.1:$port"
  done
  if $started_s3 || [ ! -f "$RUN_DIR/buckets.done" ]; then
    (cd "$ROOT" && "$TSX" stack/create-buckets.ts) | sed 's/^/stack: /' || die "creating the region buckets failed (stack/create-buckets.ts)"
    touch "$RUN_DIR/buckets.done"
  fi
  for entry in "${REGIONS[@]}"; do
    read -r name registry_port cache_port s3 bucket <<<"$entry"
    start_registry "$name" "$registry_port" "$s3" "$bucket"
    start_varnish "$name" "$registry_port" "$cache_port"
  done
  for entry in "${REGIONS[@]}"; do
    read -r name registry_port cache_port _ <<<"$entry"
    wait_ready "registry-$name" "127.0.0.1:$registry_port"
    wait_ready "varnish-$name" "127.0.0.1:$cache_port"
  done
  wait_ready temporal "$TEMPORAL_ADDRESS" temporal_healthy
  if $with_ferry; then
    start_ferry
    wait_ready api "$INGEST_ADDRESS"
    wait_ready worker -
  fi
  print_status
  awk -v ns=$(($(date +%s%N) - began)) 'BEGIN { printf "stack up in %.1f s\n", ns / 1e9 }'
}

# Stops the named components that this checkout started, all at once.
stop_components() {
  local name pid pids=()
  for name in "$@"; do
    pid=$(pid_of "$name")
    [ -n "$pid" ] || continue
    log "stopping $name (pid $pid)"
    pids+=("$pid")
  done
  stop_groups "${pids[@]}"
  for name in "$@"; do rm -f "$RUN_DIR/$name.pid"; done
}

cmd_down() {
  local file others=()
  if [ -d "$RUN_DIR" ]; then
    for file in "$RUN_DIR"/*.pid; do
      [ -e "$file" ] || continue
      case ${file##*/} in
        api.pid | worker.pid) ;;
        *) others+=("$(basename "$file" .pid)") ;;
      esac
    done
  fi
  # Ferry first, so it does not see its dependencies vanish mid-work.
  stop_components api worker
  stop_components "${others[@]}"
  rm -f "$RUN_DIR/buckets.done"
  log "stack down (Postgres and NATS are the machine's and keep running)"
}

print_status() {
  local name address pid state
  printf '%-24s %-8s %-18s %s\n' component pid address state
  {
    printf '%s %s\n' postgres "$POSTGRES_ADDRESS" nats "$NATS_ADDRESS"
    component_table
  } | while read -r name address; do
    pid=$(pid_of "$name")
    if [ "$address" = - ]; then
      if [ -n "$pid" ]; then state=up; else state=down; fi
    elif answers "$address"; then
      if [ -n "$pid" ] || [[ $name == postgres || $name == nats ]]; then state=up; else state="up (not started by this checkout)"; fi
    elif [ -n "$pid" ]; then
      state="running, not answering"
    else
      state=down
    fi
    [[ $name == postgres || $name == nats ]] && pid=machine
    printf '%-24s %-8s %-18s %s\n' "$name" "${pid:--}" "$address" "$state"
  done
}

cmd_status() {
  [ -x "$TSX" ] || die "node_modules is missing; run: stack/stack.sh install"
  load_topology
  print_status
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  stop-ferry) stop_components api worker ;;
  stop) shift; [ $# -gt 0 ] || die "usage: stack/stack.sh stop NAME..."; stop_components "$@" ;;
  status) cmd_status ;;
  install) install_all ;;
  *) die "usage: stack/stack.sh up [--with-ferry] | down | stop-ferry | stop NAME... | status | install" ;;
esac
