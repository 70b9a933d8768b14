# shellcheck shell=bash
# Shared by scripts/demo and scripts/test: make sure the Rust toolchain is there and that
# PostgreSQL and Redis run on 127.0.0.1. On a Debian/Ubuntu machine, missing services are
# installed from the distribution's packages and started; services that already run (on
# this machine or elsewhere, reachable on the usual ports) are left as they are.

PG_PORT=5432
REDIS_PORT=6379
# The account the scripts use; a fresh install gets this password for `postgres`.
PG_ADMIN_URL="postgres://postgres:postgres@127.0.0.1:${PG_PORT}/postgres"

say() { printf 'boxoffice: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else say "needs root for: $*"; return 1
  fi
}

apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    say "$* missing, and this is not a Debian/Ubuntu machine: install it yourself, then run this again"
    return 1
  fi
  if [ -z "${BOXOFFICE_APT_UPDATED:-}" ]; then
    as_root apt-get update -qq
    BOXOFFICE_APT_UPDATED=1
  fi
  say "installing $* from the distribution's packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {
  local port=$1 what=$2 i
  for i in $(seq 1 60); do
    port_open "$port" && return 0
    sleep 0.5
  done
  say "$what did not start listening on 127.0.0.1:$port"
  return 1
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    say "needs the Rust toolchain (1.85 or newer): install it with rustup (rustup.rs), then run this again"
    return 1
  fi
}

ensure_postgres() {
  command -v psql >/dev/null 2>&1 || apt_install postgresql-client
  if ! port_open "$PG_PORT"; then
    if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
      apt_install postgresql postgresql-contrib
    fi
    local version
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    if ! ls "/etc/postgresql/$version/main" >/dev/null 2>&1; then
      as_root pg_createcluster "$version" main >/dev/null
    fi
    say "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || as_root service postgresql start
    wait_for_port "$PG_PORT" PostgreSQL
  fi
  if ! psql "$PG_ADMIN_URL" -qAtc 'SELECT 1' >/dev/null 2>&1; then
    # A fresh Debian cluster asks local TCP clients for a password that `postgres` lacks.
    say "giving the postgres role the password the scripts use"
    as_root runuser -u postgres -- psql -qc "ALTER ROLE postgres PASSWORD 'postgres'" >/dev/null
    psql "$PG_ADMIN_URL" -qAtc 'SELECT 1' >/dev/null || { say "cannot log in to PostgreSQL as $PG_ADMIN_URL"; return 1; }
  fi
}

ensure_redis() {
  port_open "$REDIS_PORT" && return 0
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  say "starting Redis"
  as_root redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no >/dev/null
  wait_for_port "$REDIS_PORT" Redis
}

ensure_all() {
  ensure_rust
  ensure_postgres
  ensure_redis
}

# The browser tests: Node.js, Debian's Chromium, and playwright-core from the lock file.
ensure_browser_tests() {
  command -v node >/dev/null 2>&1 || apt_install nodejs npm
  command -v npm >/dev/null 2>&1 || apt_install npm
  [ -x "${CHROMIUM:-/usr/bin/chromium}" ] || apt_install chromium
  if [ ! -d e2e/node_modules/playwright-core ]; then
    say "installing playwright-core for the browser tests"
    npm ci --prefix e2e --no-audit --no-fund --silent
  fi
}

# promtool (from the distribution's prometheus package) checks the alert rules in
# deploy/prometheus and lints the /metrics text in the tests. The package's own server is
# not wanted running here: it is stopped again if installing started it.
ensure_promtool() {
  command -v promtool >/dev/null 2>&1 && return 0
  say "installing prometheus (for promtool) from the distribution's packages"
  apt_install prometheus
  if command -v systemctl >/dev/null 2>&1; then
    as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
}

# schemathesis for the contract test, in a virtualenv of its own (target/schemathesis), at
# the versions tests/contract/requirements.txt pins; installed again when that file changes.
ensure_contract_tests() {
  command -v python3 >/dev/null 2>&1 || apt_install python3
  local venv=target/schemathesis stamp=target/schemathesis/.requirements
  if [ -x "$venv/bin/schemathesis" ] && cmp -s tests/contract/requirements.txt "$stamp"; then
    return 0
  fi
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    apt_install python3-venv python3-pip
  fi
  say "installing schemathesis for the contract test (target/schemathesis)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/contract/requirements.txt
  cp tests/contract/requirements.txt "$stamp"
}

# nginx, for several nodes behind one address (scripts/cluster, loadtest cluster).
ensure_nginx() {
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || apt_install nginx
}

# Writes deploy/nginx.conf.template with its placeholders filled in to $1/nginx.conf:
# $2 the address:port nginx listens on, the rest the nodes' host:port.
render_nginx() {
  local dir=$1 listen=$2 upstreams="" node
  shift 2
  for node in "$@"; do
    upstreams+="server ${node} max_fails=1 fail_timeout=3s; "
  done
  mkdir -p "$dir"
  chmod 1777 "$dir"
  sed -e "s|{{DIR}}|${dir}|g" -e "s|{{LISTEN}}|${listen}|g" -e "s|{{UPSTREAMS}}|${upstreams}|" \
    deploy/nginx.conf.template > "$dir/nginx.conf"
}
