# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters for the records the certificate role keeps on each host.

Several roles use the certificate role on one host, each with its own
certificates and CRLs; the host keeps what each asked for in JSON records
under certificate_base_dir (certificates.json, crl-consumers.json), so that
no role undoes another's work and the renew playbook finds every
certificate, whichever role asked for it.

- host_record_merge: a record updated with new entries, others kept.
- certificate_record_entries: the role's normalised certificates as
  certificate_list entries, every default applied (what certificates.json holds).
- certificate_renew_list: the entries the renew playbook renews: the recorded
  ones and the inventory's certificate_list (which wins on a name).
- certificate_renew_skipped: recorded entries renew cannot renew (a key
  passphrase is never recorded; declare those in certificate_list).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

# Keys of a normalised entry (describe.yml) copied as they are into the record.
_RECORDED_KEYS = (
    "name",
    "profile",
    "common_name",
    "key_type",
    "key_curve",
    "key_size",
    "rekey",
    "ca",
    "ca_host",
    "ca_base_dir",
    "owner",
    "group",
    "mode",
    "key_mode",
    "key_path",
    "certificate_path",
    "chain_path",
    "fullchain_path",
    "notify",
    "services",
)
# Marks a recorded entry whose key is encrypted: the passphrase stays out of the record.
PASSPHRASE_MARK = "key_passphrase_required"  # noqa: S105 (a key name, not a secret)


def _mapping(value: Any, what: str) -> Mapping:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise AnsibleFilterError(f"{what} must be a dictionary, got {type(value).__name__}")
    return value


def _entries(value: Any, what: str) -> list[Mapping]:
    if value is None:
        return []
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise AnsibleFilterError(f"{what} must be a list of dictionaries, got {type(value).__name__}")
    entries = list(value)
    for entry in entries:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise AnsibleFilterError(f"every entry of {what} must be a dictionary with a name, got {entry!r}")
    return entries


def host_record_merge(recorded: Any, updates: Any, remove: Iterable[str] | None = None) -> dict:
    """`recorded` without the keys in `remove`, then updated with `updates`; keys sorted.

    Entries recorded by other users of the role are kept as they are: only the
    keys this use names (in `updates` or `remove`) change.
    """
    recorded = _mapping(recorded, "the record")
    updates = _mapping(updates, "the updates")
    dropped = set(remove or [])
    merged = {key: value for key, value in recorded.items() if key not in dropped}
    merged.update(updates)
    return {key: merged[key] for key in sorted(merged)}


def certificate_record_entries(certs: Any) -> dict:
    """The normalised certificates of describe.yml as certificate_list entries, by name.

    Each entry is complete (names, paths, owner, services ...), so the renew
    playbook re-issues the certificate exactly as the role that asked for it
    did, and recording that renewal's entries again gives the same record.
    """
    record: dict[str, dict] = {}
    for cert in _entries(certs, "the certificates"):
        entry = {key: cert[key] for key in _RECORDED_KEYS if key in cert}
        # describe.yml's subject_alt_name: the names with their DNS:/IP: prefix.
        entry["names"] = list(cert.get("subject_alt_name", cert.get("names", [])))
        if cert.get("valid_days") is not None:
            entry["valid_days"] = cert["valid_days"]
        if cert.get("profile") == "intermediate":
            entry["path_length"] = cert.get("path_length") or 0
            entry["extended_key_usage"] = list(cert.get("extended_key_usage") or [])
        if cert.get("key_passphrase"):
            entry[PASSPHRASE_MARK] = True
        record[cert["name"]] = {key: entry[key] for key in sorted(entry)}
    return {name: record[name] for name in sorted(record)}


def _renewable(recorded: Any, declared: Any) -> tuple[list[dict], list[str]]:
    recorded = _mapping(recorded, "the certificate record")
    declared_entries = _entries(declared, "certificate_list")
    declared_names = {entry["name"] for entry in declared_entries}
    by_name: dict[str, dict] = {}
    skipped: list[str] = []
    for name in sorted(recorded):
        entry = _mapping(recorded[name], f"the recorded entry {name}")
        if name in declared_names:
            continue
        if entry.get(PASSPHRASE_MARK):
            skipped.append(name)
            continue
        by_name[name] = {key: value for key, value in entry.items() if key != PASSPHRASE_MARK} | {"name": name}
    for entry in declared_entries:
        by_name[entry["name"]] = dict(entry)
    return [by_name[name] for name in sorted(by_name)], skipped


def certificate_renew_list(recorded: Any, declared: Any = None) -> list[dict]:
    """Every certificate of the host: recorded ones and certificate_list's, by name (the latter wins)."""
    return _renewable(recorded, declared)[0]


def certificate_renew_skipped(recorded: Any, declared: Any = None) -> list[str]:
    """Names of recorded certificates with an encrypted key that certificate_list does not declare."""
    return _renewable(recorded, declared)[1]


class FilterModule:
    """securestack.pki filters for the host records of the certificate role."""

    def filters(self) -> dict:
        return {
            "host_record_merge": host_record_merge,
            "certificate_record_entries": certificate_record_entries,
            "certificate_renew_list": certificate_renew_list,
            "certificate_renew_skipped": certificate_renew_skipped,
        }
