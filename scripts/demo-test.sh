#!/usr/bin/env bash
# The demo as a user meets it, tested: `make demo`'s own script on the demo's
# own inventory and published ports, from nothing, then what a user does next.
#
#   1. demo/demo.sh down, then demo/demo.sh (fresh containers from the images
#      as built: no package lists; site from the installed tarball; the
#      script itself checks the admin gets in through both web servers)
#   2. site again on the demo's inventory: every host changed=0
#   3. site in check mode (--check --diff): every host changed=0
#   4. tests/stack/test_stack.py against the running demo: the databases'
#      TLS sessions and refusals, the browser (Debian's chromium) through
#      nginx on localhost:8443 and Apache on localhost:9443 (enrol, submit,
#      approve, download, revoke), the CRL push, sslyze, testssl.sh, old TLS
#      versions refused
#   5. demo/demo.sh down (also when a step failed; DEMO_TEST_KEEP=1 keeps
#      the containers for a look)
#
# Run by scripts/molecule.sh beside the molecule scenarios (make molecule,
# make test); on its own: scripts/demo-test.sh (after make setup). It takes
# the demo's container names and ports: a demo you had running is replaced.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

export ANSIBLE_CONFIG="$top/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$top/.cache/demo-collections"
export SECURESTACK_DEMO_CREDENTIALS="$top/.cache/demo-credentials"
work="$top/.cache/demo-test"
playbook=("$top/.venv/bin/ansible-playbook" -i demo/inventory.yml demo/site.yml)

step() { printf '== demo-test %s: %s\n' "$(date +%T)" "$*"; }

finish() {
    local rc=$?
    if [[ "${DEMO_TEST_KEEP:-}" == 1 ]]; then
        step "containers kept (DEMO_TEST_KEEP=1); remove them with: bash demo/demo.sh down"
    else
        bash demo/demo.sh down > /dev/null 2>&1 || true
    fi
    if [[ $rc -eq 0 ]]; then
        step "passed"
    else
        step "FAILED (rc $rc)"
    fi
}
trap finish EXIT

# A run of site that must change nothing, on every host (the PLAY RECAP),
# and fail nowhere; the changed tasks are printed when some did change.
site_changes_nothing() {
    local what=$1 out=$2
    shift 2
    "${playbook[@]}" "$@" > "$out" 2>&1 || { tail -n 60 "$out"; echo "site ($what) failed" >&2; return 1; }
    local recap
    recap=$(sed -n '/^PLAY RECAP/,/^$/p' "$out" | grep -E ' : ok=')
    [[ -n "$recap" ]] || { tail -n 40 "$out"; echo "site ($what): no PLAY RECAP" >&2; return 1; }
    echo "$recap"
    if grep -Ev ' changed=0 .* failed=0 ' <<< "$recap" > /dev/null; then
        grep -E -B1 '^changed: ' "$out" | grep -E '^(TASK|changed)' >&2 || true
        echo "site ($what) changed something: see above and $out" >&2
        return 1
    fi
}

rm -rf "$work"
mkdir -p "$work"

step "demo/demo.sh down, then demo/demo.sh (the demo from nothing)"
bash demo/demo.sh down > /dev/null
if ! bash demo/demo.sh > "$work/demo.log" 2>&1; then
    tail -n 60 "$work/demo.log"
    echo "demo/demo.sh failed (log: $work/demo.log)" >&2
    exit 1
fi
grep -E '^(== |Portal, )' "$work/demo.log"
grep -q 'the secured stack is up' "$work/demo.log"

step "site again: must change nothing"
site_changes_nothing "second run" "$work/site-second.log"

step "site in check mode: must predict no change"
site_changes_nothing "check mode" "$work/site-check.log" --check --diff

step "the stack's tests (tests/stack) through the demo's ports"
STACK_INVENTORY="$top/demo/inventory.yml" \
STACK_CREDENTIALS="$SECURESTACK_DEMO_CREDENTIALS" \
STACK_WORK="$work" \
STACK_WEB_URLS='{"nginx": "https://localhost:8443", "apache": "https://localhost:9443"}' \
    "$top/.venv/bin/pytest" -p no:cacheprovider -rA tests/stack/test_stack.py tests/stack/test_portal.py \
        tests/stack/test_hostile_names.py
