# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE and should only be used by this collection
# (its modules, its roles and its portal). Breaking changes can occur any time.
#
# Command line of the CA engine for hosts without Ansible: the `ca` role
# installs the engine as the package `securestack_pki` and its CRL timer runs
#   python3 -m securestack_pki crl --ca DIR [--ca DIR ...]
# which rewrites each CA's CRL when it is due (or when revocations changed).

from __future__ import annotations

import argparse
import json
import sys

from ._pki_ca import CertificateAuthority
from ._pki_policy import CRYPTOGRAPHY_IMPORT_ERROR, PkiError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="securestack_pki", description="securestack.pki CA engine")
    commands = parser.add_subparsers(dest="command", required=True)
    crl = commands.add_parser("crl", help="rewrite the CRL of each CA when it is due")
    crl.add_argument("--ca", action="append", required=True, metavar="DIR", help="CA directory (repeatable)")
    crl.add_argument("--valid-days", type=int, default=None, help="CRL validity (default: the CA's last one)")
    crl.add_argument("--renew-before-days", type=int, default=3, help="rewrite when nextUpdate is this close")
    crl.add_argument("--force", action="store_true", help="rewrite even when not due")
    info = commands.add_parser("info", help="print what a CA issued, as JSON")
    info.add_argument("--ca", required=True, metavar="DIR")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if CRYPTOGRAPHY_IMPORT_ERROR is not None:
        sys.stderr.write(
            "securestack_pki: error: the Python library cryptography is missing (Debian: python3-cryptography)\n"
        )
        return 2
    try:
        if args.command == "crl":
            for path in args.ca:
                result = CertificateAuthority.open(path).refresh_crl(
                    valid_days=args.valid_days, renew_before_days=args.renew_before_days, force=args.force
                )
                state = "rewritten" if result.changed else "current"
                sys.stdout.write(f"{path}: CRL {state}, number {result.crl_number}, next update {result.next_update}\n")
        else:
            ca = CertificateAuthority.open(args.ca)
            sys.stdout.write(json.dumps({"ca": ca.summary(), "certificates": ca.inventory()}, indent=2) + "\n")
    except PkiError as exc:
        sys.stderr.write(f"securestack_pki: error: {exc}\n")
        return 1
    return 0
