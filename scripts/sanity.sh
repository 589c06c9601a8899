#!/usr/bin/env bash
# ansible-test sanity on a copy of the checkout at
# .cache/sanity/ansible_collections/securestack/pki (ansible-test wants that
# path and resolves symlinks, so a copy it is). The copy leaves out what is not
# part of the collection's source: virtual environments, caches, .git and
# molecule/ansible runtime directories; the copy's own .gitignore applies too.
# ansible-test runs from .venv-sanity (--local); each sanity test that needs
# packages gets a virtual environment that ansible-test makes and fills from
# PyPI on first use (--requirements; kept in ~/.ansible/test/venv).
set -euo pipefail
cd "$(dirname "$0")/.."

dest=.cache/sanity/ansible_collections/securestack/pki
mkdir -p "$dest"
rsync -a --delete \
    --exclude='/.venv*' --exclude='/.cache' --exclude='/.git' --exclude='/.ansible' \
    --exclude='__pycache__' --exclude='.pytest_cache' --exclude='.ruff_cache' \
    ./ "$dest/"
# ansible-test bootstraps pip in its per-test venvs with a get-pip.py that it
# downloads from a host this network does not reach; put a stand-in where it
# looks first (see scripts/ansible-test-get-pip.py).
pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',\$/\1/p" \
    .venv-sanity/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py)
[ -n "$pip_version" ] || { echo "sanity: cannot find ansible-test's pip version" >&2; exit 1; }
mkdir -p ~/.ansible/test/cache
install -m 0644 scripts/ansible-test-get-pip.py ~/.ansible/test/cache/"get_pip_${pip_version//./_}.py"

# The copy sits inside this checkout's git tree, where .cache is ignored, and
# ansible-test lists files with git: give the copy a repository of its own so
# that it sees every file of the copy (less what .gitignore leaves out).
[ -d "$dest/.git" ] || git -C "$dest" init -q
cd "$dest"
exec "$OLDPWD/.venv-sanity/bin/ansible-test" sanity --python 3.11 --local --requirements --color no "$@"
