#!/usr/bin/env bash
# Demo of securestack.pki.ca: builds the root and services CAs in a systemd
# container from the local image and shows what it made.
#   bash demo/demo.sh        # start (or reuse) the container, run the role, report
#   bash demo/demo.sh down   # remove the container
# Needs `make setup` (the .venv and the securestack/debian:12 image).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(dirname "$here")
container=securestack-demo-ca
image=securestack/debian:12
collections="$top/.cache/collections"

if [[ "${1:-}" == down ]]; then
    if docker rm -f "$container" >/dev/null 2>&1; then
        echo "removed container $container"
    else
        echo "no container $container"
    fi
    exit 0
fi

[[ -x "$top/.venv/bin/ansible-playbook" ]] || { echo "demo: run 'make setup' first (.venv missing)" >&2; exit 1; }
docker image inspect "$image" >/dev/null 2>&1 || { echo "demo: image $image missing; run 'make setup'" >&2; exit 1; }

# The collection from this checkout, as ansible_collections/securestack/pki
# under .cache/collections (the same link the Makefile and molecule use).
bash "$top/scripts/collection-link.sh"

if [[ "$(docker inspect -f '{{.State.Running}}' "$container" 2>/dev/null)" != true ]]; then
    docker rm -f "$container" >/dev/null 2>&1 || true
    echo "== starting $container from $image"
    # systemd as PID 1 without --privileged (which fails on these machines).
    docker run -d --name "$container" --hostname ca \
        --cap-add SYS_ADMIN --security-opt seccomp=unconfined \
        --cgroupns host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
        --tmpfs /run --tmpfs /run/lock --tmpfs /tmp --stop-signal SIGRTMIN+3 \
        "$image" /sbin/init >/dev/null
fi
for _ in $(seq 60); do
    state=$(docker exec "$container" systemctl is-system-running 2>/dev/null || true)
    [[ "$state" == running || "$state" == degraded ]] && break
    sleep 1
done
echo "== systemd in $container: ${state:-unknown}"

echo "== running the securestack.pki.ca role"
ANSIBLE_COLLECTIONS_PATH="$collections" \
ANSIBLE_CONFIG="${ANSIBLE_CONFIG:-$top/ansible.cfg}" \
    "$top/.venv/bin/ansible-playbook" -i "$here/inventory.yml" "$here/site.yml"

in_ca() { docker exec "$container" "$@"; }
base=/var/lib/securestack-pki
public=/var/lib/securestack-pki-public

echo
echo "================ what the role made ================"
for name in root services; do
    crt="$base/$name/ca.crt"
    echo "-- $name CA"
    in_ca openssl x509 -in "$crt" -noout -subject -issuer -startdate -enddate \
        -fingerprint -sha256 -ext basicConstraints -nameopt RFC2253 | sed 's/^/   /'
    echo "   CRL: $(in_ca openssl crl -in "$base/$name/crl.pem" -noout -crlnumber -nextupdate | paste -sd' ')"
done
echo "-- chain check: openssl verify -CAfile root/ca.crt -untrusted services/ca.crt services/ca.crt"
in_ca openssl verify -x509_strict -CAfile "$base/root/ca.crt" -untrusted "$base/services/ca.crt" \
    "$base/services/ca.crt" | sed 's/^/   /'
echo "-- CRL refresh timer"
in_ca systemctl list-timers securestack-pki-crl.timer --no-pager | sed 's/^/   /'
echo "   timer: $(in_ca systemctl is-enabled securestack-pki-crl.timer), $(in_ca systemctl is-active securestack-pki-crl.timer)"
echo "-- running its service once by hand: systemctl start securestack-pki-crl.service"
since=$(in_ca date '+%Y-%m-%d %H:%M:%S')
in_ca systemctl start securestack-pki-crl.service
echo "   result: $(in_ca systemctl show securestack-pki-crl.service -p Result --value)"
in_ca journalctl -u securestack-pki-crl.service --since "$since" -o cat --no-pager | sed 's/^/   /'
echo "-- files (inside the container)"
echo "   private (0700, keys 0600): $base"
in_ca sh -c "cd $base && ls -l root services" | sed 's/^/     /'
echo "   public (world-readable): $public"
in_ca ls -l "$public" | sed 's/^/     /'
echo
echo "Look around:  docker exec -it $container bash"
echo "   e.g.       docker exec $container openssl crl -in $public/services.crl.pem -noout -text"
echo "Remove:       bash demo/demo.sh down   (or make demo-down)"
