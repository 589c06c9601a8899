#!/usr/bin/env bash
# Build securestack.pki from this checkout and install the tarball, as a user
# installs it, into a collections path of its own:
#
#   scripts/install-collection.sh DEST
#
# DEST/ansible_collections/securestack/pki is replaced by the installed copy;
# point ANSIBLE_COLLECTIONS_PATH at DEST to run from it (the ansible package's
# bundled collections are found by ansible itself). The molecule scenario
# `default` and `make demo` run the site playbook this way, so that what the
# tarball leaves out (galaxy.yml's build_ignore) shows there.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 1 ] || { echo "usage: $0 DEST" >&2; exit 2; }
dest=$(realpath -m "$1")
venv=$PWD/.venv
[ -x "$venv/bin/ansible-galaxy" ] || { echo "install-collection: .venv is missing: run make setup" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/securestack-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$venv/bin/ansible-galaxy" collection build --output-path "$work" . > "$work/build.log" 2>&1 \
    || { cat "$work/build.log" >&2; exit 1; }
tarball=$(find "$work" -maxdepth 1 -name 'securestack-pki-*.tar.gz')
[ -n "$tarball" ] || { echo "install-collection: the build wrote no tarball" >&2; exit 1; }
rm -rf "$dest/ansible_collections/securestack/pki"
mkdir -p "$dest"
# --no-deps: the dependencies come from the ansible package (the test bed's
# .venv), as galaxy.yml's versions allow; Galaxy is not reachable here.
(cd "$work" && env -u ANSIBLE_COLLECTIONS_PATH "$venv/bin/ansible-galaxy" collection install --no-deps \
    -p "$dest" "$tarball") > "$work/install.log" 2>&1 || { cat "$work/install.log" >&2; exit 1; }
echo "securestack.pki $(basename "$tarball" .tar.gz | sed 's/^securestack-pki-//') installed from its tarball in $dest"
