# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""docs/variables.md is what scripts/gen-variables-doc.py makes of the roles' argument specs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen-variables-doc.py"
DOC = ROOT / "docs" / "variables.md"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_variables_doc", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = load_generator()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False)


def write_role(roles: Path, name: str, specs: str, meta_file: str = "argument_specs.yml") -> None:
    meta = roles / name / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    (meta / meta_file).write_text(textwrap.dedent(specs), encoding="utf-8")


def spec_options(options: dict, prefix: str = "") -> list[str]:
    names = []
    for name, spec in options.items():
        names.append(prefix + name)
        if spec.get("options"):
            joiner = "[]." if spec.get("type") == "list" else "."
            names += spec_options(spec["options"], prefix + name + joiner)
    return names


SAMPLE = """\
    ---
    argument_specs:
      extra:
        short_description: Second entry point
        options:
          demo_extra:
            type: bool
            default: false
            description: Only for tasks_from.
      main:
        short_description: A demo role
        version_added: 0.1.0
        description:
          - Uses O(demo_mode) and C(a|b); see U(https://example.org/x) and L(the docs,https://example.org/docs).
        options:
          demo_mode:
            type: str
            default: fast
            choices: [fast, slow]
            description: How to run.
          demo_secret:
            type: str
            default: ""
            no_log: true
            description: A passphrase.
          demo_expr:
            type: str
            default: "{{ groups['app'] | first }}"
            description: Evaluated at run time.
          demo_list:
            type: list
            elements: dict
            default: []
            description: Entries.
            options:
              name:
                type: str
                required: true
                description: Name of the entry.
              settings:
                type: dict
                description: Per-entry settings.
                options:
                  size:
                    type: int
                    description: A size <in bytes>.
    """


def test_docs_variables_md_is_up_to_date() -> None:
    result = run("--check")
    assert result.returncode == 0, result.stderr


def test_every_role_entry_point_and_option_is_in_the_doc() -> None:
    # Independent of the generator's own output: read the specs here and look
    # for each entry point and option by name in the committed file.
    doc = DOC.read_text(encoding="utf-8")
    roles = sorted(p for p in (ROOT / "roles").iterdir() if (p / "meta" / "argument_specs.yml").is_file())
    assert roles, "no role with an argument spec"
    for role in roles:
        specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))["argument_specs"]
        assert f"## Role {role.name}\n" in doc
        for entry, spec in specs.items():
            assert f"### {role.name}: entry point `{entry}`\n" in doc
            for name in spec_options(spec.get("options") or {}):
                assert f"| `{name}` |" in doc, f"{role.name}/{entry}: {name} missing from docs/variables.md"


def test_check_mode_fails_on_a_stale_or_missing_file(tmp_path: Path) -> None:
    roles = tmp_path / "roles"
    write_role(roles, "demo", SAMPLE)
    out = tmp_path / "variables.md"

    missing = run("--check", "--roles-dir", str(roles), "--output", str(out))
    assert missing.returncode == 1
    assert "is out of date" in missing.stderr
    assert "scripts/gen-variables-doc.py" in missing.stderr

    assert run("--roles-dir", str(roles), "--output", str(out)).returncode == 0
    assert run("--check", "--roles-dir", str(roles), "--output", str(out)).returncode == 0

    spec_file = roles / "demo" / "meta" / "argument_specs.yml"
    spec_file.write_text(
        spec_file.read_text(encoding="utf-8").replace("default: fast", "default: slow"), encoding="utf-8"
    )
    stale = run("--check", "--roles-dir", str(roles), "--output", str(out))
    assert stale.returncode == 1
    assert "is out of date" in stale.stderr
    assert '+| `demo_mode` | `str` | `"slow"`' in stale.stderr


def test_render_tables_suboptions_markup_and_order(tmp_path: Path) -> None:
    roles = tmp_path / "roles"
    write_role(roles, "demo", SAMPLE)
    doc = gen.render(roles, warn=False)

    # main first, then the other entry points by name.
    assert doc.index("### demo: entry point `main`") < doc.index("### demo: entry point `extra`")
    assert "Used with `tasks_from: extra`" in doc
    assert "A demo role\n\nUses `demo_mode`" in doc
    assert "\n\nAdded in 0.1.0.\n\n| Variable |" in doc
    # Options in the spec's order, suboptions right after their parent.
    order = ["`demo_mode`", "`demo_secret`", "`demo_expr`", "`demo_list`", "`demo_list[].name`"]
    order += ["`demo_list[].settings`", "`demo_list[].settings.size`"]
    positions = [doc.index(f"| {name} |") for name in order]
    assert positions == sorted(positions)

    assert '| `demo_mode` | `str` | `"fast"` | `"fast"`, `"slow"` | no | How to run. |' in doc
    assert "| `demo_list[].name` | `str` |  |  | yes | Name of the entry. |" in doc
    assert "| `demo_list` | `list of dict` | `[]` |" in doc
    assert "| `demo_list[].settings.size` | `int` |  |  | no | A size &lt;in bytes&gt;. |" in doc
    # A pipe inside a table cell is escaped, also inside code.
    assert "| `demo_expr` | `str` | `\"{{ groups['app'] \\| first }}\"` |" in doc
    assert "Secret: kept out of logs (`no_log`)." in doc
    # Ansible markup outside tables: O(), C(), U(), L().
    assert "Uses `demo_mode` and `a|b`; see <https://example.org/x> and [the docs](https://example.org/docs)." in doc


def test_spec_in_meta_main_and_roles_without_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    roles = tmp_path / "roles"
    write_role(roles, "inmain", SAMPLE.replace("---\n", "---\n    galaxy_info: {}\n", 1), meta_file="main.yml")
    (roles / "bare" / "tasks").mkdir(parents=True)
    doc = gen.render(roles)
    assert "## Role inmain" in doc
    assert "bare" not in doc
    assert "roles/bare has no argument spec" in capsys.readouterr().err


def test_a_broken_spec_is_reported_with_the_role(tmp_path: Path) -> None:
    roles = tmp_path / "roles"
    write_role(roles, "broken", "---\nargument_specs:\n  main:\n    options:\n      broken_x: just a string\n")
    result = run("--roles-dir", str(roles), "--output", str(tmp_path / "out.md"))
    assert result.returncode == 2
    assert "role broken, entry point main: option broken_x: expected a mapping" in result.stderr
    assert not (tmp_path / "out.md").exists()
