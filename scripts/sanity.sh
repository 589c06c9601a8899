#!/usr/bin/env bash
# ansible-test sanity on a copy of the checkout at
# .cache/sanity/ansible_collections/securestack/pki (ansible-test wants that
# path and resolves symlinks, so a copy it is). The copy leaves out what is not
# part of the collection's source: virtual environments, caches, .git and
# molecule/ansible runtime directories.
# Each sanity test runs in its own virtual environment that ansible-test makes
# and fills from PyPI on first use (--venv --requirements; kept in
# ~/.ansible/test/venv for later runs).
set -euo pipefail
cd "$(dirname "$0")/.."

dest=.cache/sanity/ansible_collections/securestack/pki
mkdir -p "$dest"
rsync -a --delete \
    --exclude='/.venv*' --exclude='/.cache' --exclude='/.git' --exclude='/.ansible' \
    --exclude='__pycache__' --exclude='.pytest_cache' --exclude='.ruff_cache' \
    ./ "$dest/"
cd "$dest"
exec "$OLDPWD/.venv/bin/ansible-test" sanity --python 3.11 --venv --requirements --color no "$@"
