# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every role's variables agree across defaults/main.yml, meta/argument_specs.yml and README.md."""

from __future__ import annotations

import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLES = sorted(
    name
    for name in os.listdir(os.path.join(ROOT, "roles"))
    if os.path.exists(os.path.join(ROOT, "roles", name, "meta", "argument_specs.yml"))
)


def read_yaml(role: str, *parts: str) -> dict:
    with open(os.path.join(ROOT, "roles", role, *parts)) as handle:
        return yaml.safe_load(handle) or {}


def test_every_role_has_an_argument_spec() -> None:
    assert sorted(os.listdir(os.path.join(ROOT, "roles"))) == ROLES
    assert "ca" in ROLES


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_argument_specs_agree(role: str) -> None:
    defaults = read_yaml(role, "defaults", "main.yml")
    options = read_yaml(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert set(defaults) == {name for name, spec in options.items() if not spec.get("required")}
    for name, value in defaults.items():
        assert name.startswith(f"{role}_"), f"{name} lacks the role prefix"
        spec = options[name]
        assert spec.get("description"), f"{name} has no description"
        assert spec.get("default") == value, f"{name}: default {value!r} in defaults, {spec.get('default')!r} in spec"


@pytest.mark.parametrize("role", ROLES)
def test_readme_documents_every_variable_with_its_default(role: str) -> None:
    with open(os.path.join(ROOT, "roles", role, "README.md")) as handle:
        readme = handle.read()
    defaults = read_yaml(role, "defaults", "main.yml")
    for name in defaults:
        assert re.search(rf"`{re.escape(name)}`", readme), f"{name} is missing from roles/{role}/README.md"
