#!/usr/bin/env bash
# Set up the securestack.pki test bed on Debian 12 as root. Idempotent, and
# fast when everything is already there.
#
#   scripts/setup.sh            everything (system packages, docker, apt cache,
#                               virtual environments, test images)
#   scripts/setup.sh STEP...    only some steps: packages docker aptcache venvs images
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it installs Debian packages and runs docker)"

# Debian packages the test bed needs on the host.
HOST_PACKAGES=(
    docker.io debootstrap rsync git make openssl curl ca-certificates
    apt-cacher-ng python3-venv shellcheck
    chromium testssl.sh
)
PYTHON=${PYTHON:-python3}
APT_CACHE_PORT=3142

step_packages() {
    local missing=()
    for p in "${HOST_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    # python3-venv is Debian's venv for /usr/bin/python3; a python3 that
    # already makes venvs (pyenv here) does not need it, but it does no harm.
    if [ ${#missing[@]} -eq 0 ]; then
        log "Debian packages: all present"
        return
    fi
    log "Debian packages: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Do not let package scripts start services: this script starts them itself.
    local policy=/usr/sbin/policy-rc.d had_policy=
    [ -e "$policy" ] && had_policy=1
    if [ -z "$had_policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod 0755 "$policy"
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" > /var/log/securestack-apt.log 2>&1 \
        || { [ -n "$had_policy" ] || rm -f "$policy"; tail -n 30 /var/log/securestack-apt.log; die "apt-get install failed"; }
    [ -n "$had_policy" ] || rm -f "$policy"
}

step_docker() {
    if docker info > /dev/null 2>&1; then
        log "docker: engine answers"
        return
    fi
    if [ -d /run/systemd/system ] && systemctl start docker > /dev/null 2>&1; then
        log "docker: started with systemctl"
    else
        log "docker: starting dockerd in the background (log: /var/log/dockerd.log)"
        setsid nohup dockerd > /var/log/dockerd.log 2>&1 < /dev/null &
        echo $! > /run/securestack-dockerd.pid
    fi
    local timeout=${DOCKER_START_TIMEOUT:-60} waited=0
    until docker info > /dev/null 2>&1; do
        if [ "$waited" -ge "$timeout" ]; then
            tail -n 20 /var/log/dockerd.log 2>/dev/null || true
            die "docker engine did not answer within ${timeout}s (see /var/log/dockerd.log)"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    log "docker: engine answers after ${waited}s"
}

# The Debian mirror this host uses, read at run time (never written in the repo).
host_mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        local uris=()
        mapfile -t uris < <(awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' "$f")
        for uri in "${uris[@]}"; do
            case "$uri" in */debian|*/debian/) echo "${uri%/}"; return ;; esac
        done
    done
    if [ -r /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ { print $2; exit }' /etc/apt/sources.list)
        [ -z "$uri" ] || { echo "${uri%/}"; return; }
    fi
    sed -n 's/^def_mirror="\(.*\)"$/\1/p' /usr/sbin/debootstrap | head -n1
}

# apt-cacher-ng on the host, port 3142 on all addresses, so that containers
# reach it through their docker network's gateway. The package's default
# backend for /debian is a mirror this network may not reach, so it is started
# with the host's own mirror as backend (given on the command line, not in a file).
step_aptcache() {
    local mirror probe
    mirror=$(host_mirror)
    probe="$mirror/dists/bookworm/InRelease"
    if curl -fsS -o /dev/null -m 20 -x "http://127.0.0.1:$APT_CACHE_PORT" "$probe" 2>/dev/null; then
        log "apt cache: apt-cacher-ng answers on port $APT_CACHE_PORT"
        return
    fi
    local pidfile=/run/apt-cacher-ng/pid
    if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        log "apt cache: restarting apt-cacher-ng (pid $(cat "$pidfile")) with the host's mirror as backend"
        kill "$(cat "$pidfile")"
        sleep 1
    fi
    mkdir -p /run/apt-cacher-ng /var/cache/apt-cacher-ng /var/log/apt-cacher-ng
    chown -R apt-cacher-ng:apt-cacher-ng /run/apt-cacher-ng /var/cache/apt-cacher-ng /var/log/apt-cacher-ng
    runuser -u apt-cacher-ng -- /usr/sbin/apt-cacher-ng -c /etc/apt-cacher-ng \
        pidfile="$pidfile" SocketPath=/run/apt-cacher-ng/socket foreground=0 \
        Port="$APT_CACHE_PORT" \
        "Remap-debrep=file:deb_mirror*.gz /debian ; $mirror/"
    local waited=0
    until curl -fsS -o /dev/null -m 20 -x "http://127.0.0.1:$APT_CACHE_PORT" "$probe" 2>/dev/null; do
        if [ "$waited" -ge 20 ]; then
            # Not fatal: containers and image builds fall back to direct downloads.
            log "apt cache: WARNING apt-cacher-ng does not answer; apt goes direct"
            return
        fi
        sleep 1
        waited=$((waited + 1))
    done
    log "apt cache: apt-cacher-ng started on port $APT_CACHE_PORT"
}

# One virtual environment per requirements file, re-created only when the file
# changes (its hash is kept in the venv).
make_venv() {
    local dir=$1 req=$2 stamp want
    stamp="$dir/.requirements.sha256"
    want=$(sha256sum "$req" | cut -d' ' -f1)
    if [ -x "$dir/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        log "venv $dir: up to date"
        return
    fi
    log "venv $dir: creating from $req"
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip > /dev/null
    "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
}

step_venvs() {
    make_venv .venv requirements/test.txt
    make_venv .venv-lint requirements/lint.txt
    make_venv .venv-sanity requirements/sanity.txt
    make_venv .venv-engine-oldest requirements/engine-oldest.txt
    # TLS scanner (sslyze pins its own cryptography and nassl) and the
    # portal's locked dependencies (its tests and the browser driver).
    make_venv .venv-sslyze requirements/sslyze.txt
    make_venv .venv-portal requirements/portal.txt
    # pkilint's RFC 5280 linters over the engine's certificates and CRLs
    # (make unit); its pins stay out of .venv.
    make_venv .venv-pkilint requirements/pkilint.txt
    # Packaging checks: galaxy-importer, antsibull-changelog, ansible-builder.
    make_venv .venv-galaxy requirements/galaxy.txt
}

# The images build in parallel (debootstrap waits on the network and dpkg
# more than on the CPU); each build's output goes to a log shown at the end.
step_images() {
    local recipe name failed=0 pids=() names=()
    mkdir -p .cache/logs
    for recipe in images/debian-*.env; do
        name=$(basename "$recipe" .env)
        scripts/build-image.sh "$recipe" > ".cache/logs/image-$name.log" 2>&1 &
        pids+=("$!")
        names+=("$name")
    done
    for i in "${!pids[@]}"; do
        if wait "${pids[$i]}"; then
            tail -n 1 ".cache/logs/image-${names[$i]}.log"
        else
            cat ".cache/logs/image-${names[$i]}.log" >&2
            log "image ${names[$i]}: build FAILED (log: .cache/logs/image-${names[$i]}.log)"
            failed=1
        fi
    done
    [ "$failed" = 0 ] || die "image build failed"
}

run_step() {
    local start
    start=$(date +%s)
    "step_$1"
    log "step $1 took $(( $(date +%s) - start ))s"
}

if [ $# -gt 0 ]; then
    for s in "$@"; do
        run_step "$s"
    done
else
    run_step packages
    run_step docker
    run_step aptcache
    # Images (network and dpkg) and venvs (pip) build side by side.
    mkdir -p .cache/logs
    run_step images > .cache/logs/setup-images.log 2>&1 &
    images_pid=$!
    run_step venvs
    images_rc=0
    wait "$images_pid" || images_rc=$?
    cat .cache/logs/setup-images.log
    [ "$images_rc" = 0 ] || die "building the test images failed (see above)"
fi
log "done in ${root}"
