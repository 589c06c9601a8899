#!/usr/bin/env bash
# Run `molecule test -s NAME` for every scenario under molecule/ (a directory
# with a molecule.yml, except molecule/resources). `--list` prints the names.
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

for s in "${scenarios[@]}"; do
    scripts/timed "molecule $s" .venv/bin/molecule test -s "$s"
done
