#!/usr/bin/env bash
# Demo of securestack.pki: the whole secured stack on six local Debian 12
# containers (CA, nginx, Apache, portal, PostgreSQL, MariaDB), built by the
# collection's `site` playbook, then how to reach the portal from this
# machine through each web server with the admin's client certificate.
#   bash demo/demo.sh        # start (or reuse) the containers, run site, report
#   bash demo/demo.sh down   # remove the containers, the network and the credentials
# Needs `make setup` (the .venv and the securestack/debian:12 image).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(dirname "$here")
image=securestack/debian:12
network=securestack-demo
credentials="$top/.cache/demo-credentials"
# site runs from the collection as users install it: built from this
# checkout and installed from its tarball (scripts/install-collection.sh).
collections="$top/.cache/demo-collections"
# name:published ports (127.0.0.1 only)
containers=(
    securestack-demo-ca:
    securestack-demo-postgresql:
    securestack-demo-mysql:
    securestack-demo-portal:
    "securestack-demo-nginx:8443:443 8080:80"
    "securestack-demo-apache:9443:443 9080:80"
)

if [[ "${1:-}" == down ]]; then
    for entry in "${containers[@]}"; do
        name=${entry%%:*}
        docker rm -f "$name" >/dev/null 2>&1 && echo "removed container $name"
    done
    docker network rm "$network" >/dev/null 2>&1 && echo "removed network $network"
    rm -rf "$credentials"
    exit 0
fi

[[ -x "$top/.venv/bin/ansible-playbook" ]] || { echo "demo: run 'make setup' first (.venv missing)" >&2; exit 1; }
docker image inspect "$image" >/dev/null 2>&1 || { echo "demo: image $image missing; run 'make setup'" >&2; exit 1; }
bash "$top/scripts/install-collection.sh" "$collections"

docker network inspect "$network" >/dev/null 2>&1 || docker network create "$network" >/dev/null
for entry in "${containers[@]}"; do
    name=${entry%%:*}
    ports=${entry#*:}
    [[ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" == true ]] && continue
    docker rm -f "$name" >/dev/null 2>&1 || true
    publish=()
    for p in $ports; do
        publish+=(-p "127.0.0.1:$p")
    done
    echo "== starting $name"
    # systemd as PID 1 without --privileged (which fails on these machines).
    # <name>.internal: the qualified name the certificates' CRL and issuer
    # URLs use (demo/inventory.yml, ca_crl_url_base). NET_ADMIN: root on a
    # real host sets its firewall; the portal role loads its nftables table.
    docker run -d --name "$name" --hostname "$name" --network "$network" --network-alias "$name.internal" \
        "${publish[@]}" \
        --cap-add SYS_ADMIN --cap-add NET_ADMIN --security-opt seccomp=unconfined \
        --cgroupns host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
        --tmpfs /run --tmpfs /run/lock --tmpfs /tmp --stop-signal SIGRTMIN+3 \
        "$image" /sbin/init >/dev/null
done
for entry in "${containers[@]}"; do
    name=${entry%%:*}
    for _ in $(seq 90); do
        state=$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)
        [[ "$state" == running || "$state" == degraded ]] && break
        sleep 1
    done
    echo "== systemd in $name: ${state:-unknown}"
done

mkdir -p "$credentials"
chmod 0700 "$credentials"
echo "== running securestack.pki.site on the six containers"
SECURESTACK_DEMO_CREDENTIALS="$credentials" \
ANSIBLE_COLLECTIONS_PATH="$collections" \
ANSIBLE_CONFIG="${ANSIBLE_CONFIG:-$top/ansible.cfg}" \
    "$top/.venv/bin/ansible-playbook" -i "$here/inventory.yml" "$here/site.yml"

root="$credentials/root.crt"
docker exec securestack-demo-ca cat /var/lib/securestack-pki/root/ca.crt > "$root"
p12=$(ls "$credentials"/*-admin.p12)
pass=$(ls "$credentials"/*-admin.passphrase)
admin_crt=$(ls "$credentials"/*-admin.crt)

# Prove the way in works before telling anyone to use it: the admin's
# certificate through each web server, and no certificate refused.
key_pem="$credentials/admin-key.pem"
openssl pkcs12 -in "$p12" -nocerts -nodes -passin "file:$pass" -out "$key_pem" 2>/dev/null
chmod 0600 "$key_pem"
failed=()
for port in 8443 9443; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$root" --cert "$admin_crt" --key "$key_pem" \
        "https://localhost:$port/" || true)
    without=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$root" "https://localhost:$port/") || true
    [[ "$code" == 200 ]] || failed+=("https://localhost:$port/ answered the admin's certificate with HTTP $code")
    [[ "$without" =~ ^[23] ]] && failed+=("https://localhost:$port/ let a browser without a certificate in (HTTP $without)")
    [[ "$without" == 000 ]] && without="refused in the TLS handshake"
    [[ "$without" =~ ^[0-9]+$ ]] && without="HTTP $without"
    echo "== https://localhost:$port/ with the admin certificate: HTTP $code; without a certificate: $without"
done
rm -f "$key_pem"
if [[ ${#failed[@]} -gt 0 ]]; then
    printf 'demo: %s\n' "${failed[@]}" >&2
    exit 1
fi

cat <<EOF

================ the secured stack is up ================
Portal, through nginx:   https://localhost:8443/
Portal, through Apache:  https://localhost:9443/
CA certificates and CRLs (plain HTTP): http://localhost:8080/pki/  http://localhost:9080/pki/

The admin's client certificate (PKCS#12) and its passphrase:
  $p12
  $pass
Our root CA (trust it in the browser as an authority, for localhost):
  $root

In a browser: import the root as a certificate authority and the .p12 as
your certificate (Firefox: Settings > Privacy & Security > Certificates;
Chromium: Settings > Privacy and security > Security > Manage certificates),
then open https://localhost:8443/ and pick the admin certificate.

From the command line:
  openssl pkcs12 -in $p12 -passin file:$pass -nodes -out /tmp/admin.pem
  curl --cacert $root --cert /tmp/admin.pem https://localhost:8443/api/v1/me

Containers: ${containers[*]%%:*}
Look around:  docker exec -it securestack-demo-portal bash
Remove:       make demo-down
EOF
