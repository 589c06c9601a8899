#!/usr/bin/env bash
# Make this checkout visible to ansible as securestack.pki:
#   .cache/collections/ansible_collections/securestack/pki -> the checkout.
# ANSIBLE_COLLECTIONS_PATH=.cache/collections (set by the Makefile) does the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
ns=.cache/collections/ansible_collections/securestack
mkdir -p "$ns"
if [ "$(readlink "$ns/pki" 2>/dev/null)" != "../../../.." ]; then
    rm -rf "$ns/pki"
    ln -s ../../../.. "$ns/pki"
fi
