# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The engine's command line, used by the CRL refresh timer on hosts without Ansible."""

from __future__ import annotations

import json

import pytest

from ansible_collections.securestack.pki.plugins.module_utils._pki_ca import AuthoritySettings, CertificateAuthority
from ansible_collections.securestack.pki.plugins.module_utils._pki_cli import main


@pytest.fixture
def ca_dir(tmp_path) -> str:
    path = str(tmp_path / "ca")
    CertificateAuthority.ensure(path, AuthoritySettings(common_name="CLI CA"))
    return path


def test_crl_not_due_is_left_alone(ca_dir: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["crl", "--ca", ca_dir]) == 0
    assert "CRL current, number 1" in capsys.readouterr().out


def test_crl_due_is_rewritten(ca_dir: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["crl", "--ca", ca_dir, "--valid-days", "30", "--renew-before-days", "10"]) == 0
    assert "CRL rewritten, number 2" in capsys.readouterr().out
    assert main(["crl", "--ca", ca_dir, "--force"]) == 0
    assert "CRL rewritten, number 3" in capsys.readouterr().out


def test_missing_ca_fails_with_a_message(tmp_path, capsys: pytest.CaptureFixture) -> None:
    assert main(["crl", "--ca", str(tmp_path / "nowhere")]) == 1
    assert "no CA at" in capsys.readouterr().err


def test_info_prints_json(ca_dir: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["info", "--ca", ca_dir]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["ca"]["subject"] == "CN=CLI CA" and printed["certificates"] == []
