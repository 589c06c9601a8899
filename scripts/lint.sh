#!/usr/bin/env bash
# ruff (check + format check) over the Python of plugins/ tests/ scripts/ molecule/ portal/ roles/,
# yamllint over the repo, ansible-lint --profile production (from .venv-lint).
set -euo pipefail
cd "$(dirname "$0")/.."

py_dirs=()
for d in plugins tests scripts molecule portal roles; do
    [ -d "$d" ] && py_dirs+=("$d")
done
py_files=()
if [ ${#py_dirs[@]} -gt 0 ]; then
    mapfile -t py_files < <(find "${py_dirs[@]}" -name '*.py' -not -path '*/__pycache__/*' -not -path '*/build/*' | sort)
fi
if [ ${#py_files[@]} -gt 0 ]; then
    echo "-- ruff check (${#py_files[@]} files)"
    .venv/bin/ruff check "${py_files[@]}"
    echo "-- ruff format --check"
    .venv/bin/ruff format --check "${py_files[@]}"
else
    echo "-- ruff: no Python files yet"
fi

echo "-- yamllint"
.venv/bin/yamllint --strict .

echo "-- ansible-lint --profile production"
PATH="$PWD/.venv-lint/bin:$PATH" .venv-lint/bin/ansible-lint --profile production
