# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The filters behind the host records of the certificate role (plugins/filter/host_records.py)."""

from __future__ import annotations

import copy

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.securestack.pki.plugins.filter.host_records import (
    PASSPHRASE_MARK,
    FilterModule,
    certificate_record_entries,
    certificate_renew_list,
    certificate_renew_skipped,
    host_record_merge,
)


def normalised(name: str, **overrides) -> dict:
    """An entry as describe.yml makes it: every default applied."""
    cert = {
        "name": name,
        "request_name": f"web1/{name}",
        "profile": "server",
        "common_name": "web1.example.test",
        "subject_alt_name": ["DNS:web1.example.test", "IP:192.0.2.10"],
        "key_type": "ecdsa",
        "key_curve": "secp256r1",
        "key_size": 3072,
        "key_passphrase": "",
        "ca": "services",
        "ca_host": "ca1",
        "ca_base_dir": "/var/lib/securestack-pki",
        "valid_days": None,
        "path_length": None,
        "extended_key_usage": [],
        "owner": "root",
        "group": "www-data",
        "mode": "0644",
        "key_mode": "0640",
        "rekey": False,
        "renew_now": True,
        "notify": ["Reload nginx"],
        "services": ["nginx.service"],
        "key_path": f"/etc/securestack-pki/private/{name}.key",
        "certificate_path": f"/etc/securestack-pki/{name}.crt",
        "chain_path": f"/etc/securestack-pki/{name}-chain.pem",
        "fullchain_path": f"/etc/securestack-pki/{name}-fullchain.pem",
    }
    cert.update(overrides)
    return cert


# ------------------------------------------------------------ host_record_merge
def test_merge_keeps_the_entries_of_other_roles():
    recorded = {"proxy": {"by": "nginx"}, "db": {"by": "postgresql"}}
    merged = host_record_merge(recorded, {"portal": {"by": "portal"}})
    assert merged == {"db": {"by": "postgresql"}, "portal": {"by": "portal"}, "proxy": {"by": "nginx"}}
    assert list(merged) == ["db", "portal", "proxy"]


def test_merge_replaces_an_entry_of_the_same_name():
    merged = host_record_merge({"server": {"old": True}, "db": {}}, {"server": {"new": True}})
    assert merged == {"db": {}, "server": {"new": True}}


def test_merge_removes_only_what_it_is_told_to():
    recorded = {"nginx": {"cas": ["users"]}, "postgresql": {"cas": ["services"]}}
    assert host_record_merge(recorded, {}, remove=["nginx"]) == {"postgresql": {"cas": ["services"]}}
    # remove, then update: how crl.yml replaces its own consumer's record.
    assert host_record_merge(recorded, {"nginx": {"cas": ["root"]}}, remove=["nginx"])["nginx"] == {"cas": ["root"]}


def test_merge_of_the_same_entries_changes_nothing():
    recorded = {"a": {"x": 1}, "b": {"y": 2}}
    before = copy.deepcopy(recorded)
    assert host_record_merge(recorded, {"a": {"x": 1}}) == recorded
    assert recorded == before  # the input is not modified


def test_merge_without_a_record():
    assert host_record_merge(None, {"a": {}}) == {"a": {}}
    assert host_record_merge({}, {}) == {}


@pytest.mark.parametrize(
    ("recorded", "updates", "message"),
    [
        (["a"], {}, "the record must be a dictionary, got list"),
        ({}, "a", "the updates must be a dictionary, got str"),
    ],
)
def test_merge_rejects_what_is_not_a_record(recorded, updates, message):
    with pytest.raises(AnsibleFilterError, match=message):
        host_record_merge(recorded, updates)


# ----------------------------------------------------- certificate_record_entries
def test_record_entries_are_certificate_list_entries_with_every_default():
    record = certificate_record_entries([normalised("server"), normalised("proxy", profile="client")])
    assert list(record) == ["proxy", "server"]
    entry = record["server"]
    assert entry["names"] == ["DNS:web1.example.test", "IP:192.0.2.10"]
    assert entry["services"] == ["nginx.service"]
    assert entry["notify"] == ["Reload nginx"]
    assert entry["ca_host"] == "ca1" and entry["ca_base_dir"] == "/var/lib/securestack-pki"
    assert entry["group"] == "www-data" and entry["key_mode"] == "0640"
    assert entry["fullchain_path"] == "/etc/securestack-pki/server-fullchain.pem"
    # What only this run means, or what certificate_list has no key for, is not recorded.
    for key in ("request_name", "renew_now", "subject_alt_name", "key_passphrase", "valid_days", "path_length"):
        assert key not in entry, key
    assert list(entry) == sorted(entry)


def test_record_entries_keep_a_validity_and_the_limits_of_an_intermediate():
    record = certificate_record_entries(
        [
            normalised("short", valid_days=2),
            normalised(
                "users-ca",
                profile="intermediate",
                path_length=0,
                extended_key_usage=["clientAuth"],
                subject_alt_name=[],
            ),
        ]
    )
    assert record["short"]["valid_days"] == 2
    assert record["users-ca"]["path_length"] == 0
    assert record["users-ca"]["extended_key_usage"] == ["clientAuth"]
    assert record["users-ca"]["names"] == []


def test_a_key_passphrase_is_never_recorded():
    record = certificate_record_entries([normalised("secret", key_passphrase="vault-kept 7f3c")])
    assert "vault-kept 7f3c" not in repr(record)
    assert record["secret"][PASSPHRASE_MARK] is True


def test_record_entries_reject_an_entry_without_a_name():
    with pytest.raises(AnsibleFilterError, match="every entry of the certificates must be a dictionary with a name"):
        certificate_record_entries([{"profile": "server"}])
    with pytest.raises(AnsibleFilterError, match="the certificates must be a list of dictionaries, got dict"):
        certificate_record_entries({"name": "server"})


# --------------------------------------------------------- certificate_renew_list
def test_renew_list_holds_every_recorded_certificate_and_the_declared_ones():
    recorded = certificate_record_entries([normalised("server"), normalised("db", services=["mariadb.service"])])
    declared = [{"name": "extra", "profile": "client"}]
    renew = certificate_renew_list(recorded, declared)
    assert [entry["name"] for entry in renew] == ["db", "extra", "server"]
    assert renew[0]["services"] == ["mariadb.service"]
    assert renew[1] == {"name": "extra", "profile": "client"}


def test_renew_list_prefers_the_inventory_on_a_name():
    recorded = certificate_record_entries([normalised("server")])
    renew = certificate_renew_list(recorded, [{"name": "server", "names": ["other.example.test"]}])
    assert renew == [{"name": "server", "names": ["other.example.test"]}]


def test_renew_list_of_a_host_with_nothing():
    assert certificate_renew_list({}, []) == []
    assert certificate_renew_list(None, None) == []


def test_renewing_the_recorded_entries_records_the_same_entries():
    """A recorded entry fed back as a certificate_list entry keeps every recorded value."""
    recorded = certificate_record_entries([normalised("server"), normalised("proxy", profile="client")])
    for entry in certificate_renew_list(recorded):
        assert entry == recorded[entry["name"]]


def test_encrypted_keys_are_renewed_only_when_declared():
    recorded = certificate_record_entries([normalised("server"), normalised("secret", key_passphrase="x")])
    assert [entry["name"] for entry in certificate_renew_list(recorded, [])] == ["server"]
    assert certificate_renew_skipped(recorded, []) == ["secret"]
    declared = [{"name": "secret", "key_passphrase": "x"}]
    assert [entry["name"] for entry in certificate_renew_list(recorded, declared)] == ["secret", "server"]
    assert certificate_renew_skipped(recorded, declared) == []
    # The mark never reaches certificate_list (its argument spec has no such key).
    assert all(PASSPHRASE_MARK not in entry for entry in certificate_renew_list(recorded, declared))


def test_renew_list_rejects_a_broken_record():
    with pytest.raises(AnsibleFilterError, match="the certificate record must be a dictionary, got list"):
        certificate_renew_list([], [])
    with pytest.raises(AnsibleFilterError, match="the recorded entry server must be a dictionary, got str"):
        certificate_renew_list({"server": "x"}, [])
    with pytest.raises(AnsibleFilterError, match="every entry of certificate_list must be a dictionary with a name"):
        certificate_renew_list({}, [{"profile": "client"}])


def test_filters_are_exposed_under_their_names():
    assert set(FilterModule().filters()) == {
        "host_record_merge",
        "certificate_record_entries",
        "certificate_renew_list",
        "certificate_renew_skipped",
    }
