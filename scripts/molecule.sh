#!/usr/bin/env bash
# Run `molecule test -s NAME` for every scenario under molecule/ (a directory
# with a molecule.yml, except molecule/resources), and the demo's own test
# (scripts/demo-test.sh: make demo's path, from nothing, on its published
# ports) as one more job beside them. `--list` prints the scenarios' names.
#
# Scenarios run MOLECULE_JOBS at a time (default 2): each has its own
# containers and network, and a single scenario leaves much of the machine
# idle while it waits on `docker exec`. Each one's output goes to
# .cache/logs/molecule-NAME.log; a failed scenario's log is printed whole.
# The slowest job (the demo) starts first.
set -euo pipefail
cd "$(dirname "$0")/.."

scenarios=()
for f in molecule/*/molecule.yml; do
    [ -e "$f" ] || continue
    name=$(basename "$(dirname "$f")")
    [ "$name" = resources ] && continue
    scenarios+=("$name")
done

if [ "${1:-}" = --list ]; then
    printf '%s\n' "${scenarios[@]}"
    exit 0
fi
[ ${#scenarios[@]} -gt 0 ] || { echo "no molecule scenarios found" >&2; exit 1; }

# Longest first, so that the last job to start is a short one.
order=(demo certificate single-host apache nginx mysql postgresql ca)
scenarios+=(demo)
queue=()
for s in "${order[@]}"; do
    for t in "${scenarios[@]}"; do
        [ "$s" = "$t" ] && queue+=("$s")
    done
done
for t in "${scenarios[@]}"; do
    case " ${order[*]} " in *" $t "*) ;; *) queue+=("$t") ;; esac
done

jobs_max=${MOLECULE_JOBS:-2}
mkdir -p .cache/logs
declare -A pid_of=()
failed=()

# reap: wait for any one scenario to end and record its result.
reap() {
    local done_pid s rc=0
    wait -n -p done_pid || rc=$?
    for s in "${!pid_of[@]}"; do
        if [ "${pid_of[$s]}" = "$done_pid" ]; then
            unset "pid_of[$s]"
            if [ "$rc" -ne 0 ]; then
                failed+=("$s")
                echo "== molecule $s FAILED (rc $rc); its log:"
                cat ".cache/logs/molecule-$s.log"
            else
                tail -n 1 ".cache/logs/molecule-$s.log"
            fi
        fi
    done
}

for s in "${queue[@]}"; do
    while [ "${#pid_of[@]}" -ge "$jobs_max" ]; do
        reap
    done
    echo "== molecule $s: started $(date +%T) (log: .cache/logs/molecule-$s.log)"
    if [ "$s" = demo ]; then
        scripts/timed "demo-test" scripts/demo-test.sh > ".cache/logs/molecule-$s.log" 2>&1 &
    else
        scripts/timed "molecule $s" .venv/bin/molecule test -s "$s" > ".cache/logs/molecule-$s.log" 2>&1 &
    fi
    pid_of[$s]=$!
done
while [ "${#pid_of[@]}" -gt 0 ]; do
    reap
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "== molecule: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "== molecule: all ${#queue[@]} jobs passed (the scenarios and the demo's test)"
