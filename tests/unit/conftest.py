# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make this checkout importable as ansible_collections.securestack.pki for plain pytest runs."""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, ".cache", "unit-collections")


def link_collection() -> None:
    """Idempotent: the checkout becomes importable as ansible_collections.securestack.pki."""
    if os.sep + os.path.join("ansible_collections", "securestack", "pki") in ROOT:
        # ansible-test units or an installed copy: already importable.
        sys.path.insert(0, ROOT.rsplit(os.sep + "ansible_collections", 1)[0])
        return
    link = os.path.join(COLLECTIONS, "ansible_collections", "securestack", "pki")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if not os.path.islink(link):
        os.symlink(ROOT, link)
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)


link_collection()
