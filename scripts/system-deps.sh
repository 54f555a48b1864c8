#!/usr/bin/env bash
# Install the Debian packages the test suite needs, and only those that are missing:
#   - PostgreSQL server binaries (initdb, pg_ctl) for throwaway clusters
#   - redis-server for throwaway Redis instances
#   - chromium for browser tests
#   - nodejs and npm for the test OpenID Connect provider (only when node/npm are absent)
# Safe to run repeatedly; exits quickly when everything is present.
set -euo pipefail

log() { printf 'system-deps: %s\n' "$*"; }

have_postgres() {
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null \
        || { command -v initdb >/dev/null && command -v pg_ctl >/dev/null; }
}

have_chromium() {
    command -v chromium >/dev/null || command -v chromium-browser >/dev/null
}

missing=()
have_postgres || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
have_chromium || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)

if [ "${#missing[@]}" -eq 0 ]; then
    log "all test dependencies are present (postgresql, redis-server, chromium, node, npm)"
    exit 0
fi

if ! command -v apt-get >/dev/null; then
    log "missing: ${missing[*]}; apt-get is not available, install them by hand" >&2
    exit 1
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then
        sudo_cmd=(sudo)
    else
        log "missing: ${missing[*]}; not root and sudo is not available" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
log "installing: ${missing[*]}"
log "running: apt-get update"
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
log "running: apt-get install -y --no-install-recommends ${missing[*]}"
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"

still_missing=()
have_postgres || still_missing+=(postgresql)
command -v redis-server >/dev/null || still_missing+=(redis-server)
have_chromium || still_missing+=(chromium)
command -v node >/dev/null || still_missing+=(nodejs)
command -v npm >/dev/null || still_missing+=(npm)
if [ "${#still_missing[@]}" -ne 0 ]; then
    log "still missing after install: ${still_missing[*]}" >&2
    exit 1
fi
log "done"
