# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write docs/variables.md, the reference of every role variable, from the roles' argument specs.

Reads roles/*/meta/argument_specs.yml (or .yaml, or the argument_specs key of
meta/main.yml), every entry point of every role, and writes one section per
role and entry point with a table of its options (name, type, default,
choices, required, description); suboptions follow their parent as
`parent[].child` (list of dicts) or `parent.child` (dict). Roles are sorted by
name, entry points with `main` first then by name, options in the order of
the spec file.

    .venv/bin/python scripts/gen-variables-doc.py            # write docs/variables.md
    .venv/bin/python scripts/gen-variables-doc.py --check    # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = Path("docs") / "variables.md"
COMMAND = ".venv/bin/python scripts/gen-variables-doc.py"

# Ansible's documentation markup (the subset role argument specs use), as in
# ansible-doc: C() code, V() value, O() option, E() environment variable,
# RV() return value, I() italics, B() bold, M() module, P() plugin, U() link,
# L(text,url) link, R(text,ref) reference. No nesting, as in Ansible's parser.
_MARKUP = re.compile(r"\b(RV|[CVOEIBMPULR])\(([^)]*)\)|\bHORIZONTALLINE\b")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")


class SpecError(Exception):
    """An argument spec that cannot be documented."""


def _escape_text(text: str) -> str:
    """Escape what Markdown would read as HTML or emphasis (outside code spans).

    Underscores stay: GitHub's Markdown does not read them as emphasis inside
    words, which is where variable names put them.
    """
    out: list[str] = []
    pos = 0
    for match in _CODE_SPAN.finditer(text):  # `code` written as such is kept verbatim
        out.append(_escape_plain(text[pos : match.start()]))
        out.append(match.group(0))
        pos = match.end()
    out.append(_escape_plain(text[pos:]))
    return "".join(out)


def _escape_plain(text: str) -> str:
    return text.replace("\\", "\\\\").replace("<", "&lt;").replace(">", "&gt;").replace("*", "\\*")


def code(text: str) -> str:
    """A Markdown code span holding text verbatim (backticks and pipes handled)."""
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def render_markup(text: str) -> str:
    """Ansible markup to Markdown; everything else escaped."""
    out: list[str] = []
    pos = 0
    for match in _MARKUP.finditer(text):
        out.append(_escape_text(text[pos : match.start()]))
        pos = match.end()
        kind, arg = match.group(1), match.group(2)
        if kind is None:
            out.append("<hr>")
        elif kind in {"C", "V", "O", "E", "RV", "M", "P"}:
            out.append(code(arg))
        elif kind == "I":
            out.append(f"*{_escape_text(arg)}*")
        elif kind == "B":
            out.append(f"**{_escape_text(arg)}**")
        elif kind == "U":
            out.append(f"<{arg}>")
        elif kind == "L":
            label, _comma, url = arg.rpartition(",")
            out.append(f"[{_escape_text(label.strip())}]({url.strip()})")
        else:  # R(text, ref): an anchor in Ansible's docs, plain text here
            label, _comma, _ref = arg.rpartition(",")
            out.append(_escape_text(label.strip()))
    out.append(_escape_text(text[pos:]))
    return "".join(out)


def paragraphs(value: Any) -> list[str]:
    """A description (string or list of strings) as a list of paragraphs, whitespace collapsed."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [" ".join(str(item).split()) for item in items if str(item).strip()]


def cell(text: str) -> str:
    """Text made safe for one cell of a Markdown table."""
    return text.replace("|", "\\|").replace("\n", " ")


def type_name(spec: dict[str, Any]) -> str:
    kind = str(spec.get("type", "str"))
    if kind == "list" and spec.get("elements"):
        return f"list of {spec['elements']}"
    return kind


def value_repr(value: Any) -> str:
    """A default or a choice as it would be written in YAML flow style (JSON for containers)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=False, default=str)


def option_rows(options: dict[str, Any], prefix: str = "") -> list[str]:
    """Table rows of options and, after each, its suboptions."""
    rows: list[str] = []
    for name, spec in options.items():
        if not isinstance(spec, dict):
            raise SpecError(f"option {prefix}{name}: expected a mapping, got {type(spec).__name__}")
        full = f"{prefix}{name}"
        default = code(value_repr(spec["default"])) if "default" in spec else ""
        choices = ", ".join(code(value_repr(choice)) for choice in spec.get("choices") or [])
        required = "yes" if spec.get("required") else "no"
        description = "<br>".join(render_markup(p) for p in paragraphs(spec.get("description")))
        if spec.get("no_log"):
            description += ("<br>" if description else "") + "Secret: kept out of logs (`no_log`)."
        if "version_added" in spec:
            description += ("<br>" if description else "") + f"Added in {_escape_text(str(spec['version_added']))}."
        rows.append(
            "| "
            + " | ".join(
                cell(part) for part in (code(full), code(type_name(spec)), default, choices, required, description)
            )
            + " |"
        )
        suboptions = spec.get("options")
        if suboptions:
            joiner = "[]." if spec.get("type") == "list" else "."
            rows.extend(option_rows(suboptions, f"{full}{joiner}"))
    return rows


def anchor(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def load_specs(role_dir: Path) -> dict[str, Any] | None:
    """The argument_specs mapping of a role, or None when it has none."""
    meta = role_dir / "meta"
    for name in ("argument_specs.yml", "argument_specs.yaml"):
        path = meta / name
        if path.is_file():
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            specs = data.get("argument_specs") if isinstance(data, dict) else None
            if not isinstance(specs, dict):
                raise SpecError(f"{path}: no argument_specs mapping")
            return specs
    for name in ("main.yml", "main.yaml"):
        path = meta / name
        if path.is_file():
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            specs = data.get("argument_specs") if isinstance(data, dict) else None
            if isinstance(specs, dict):
                return specs
    return None


def entry_point_order(names: list[str]) -> list[str]:
    return sorted(names, key=lambda name: (name != "main", name))


def render(roles_dir: Path, warn: bool = True) -> str:
    """The whole of docs/variables.md for the roles under roles_dir."""
    sections: list[str] = []
    index: list[str] = []
    for role_dir in sorted(path for path in roles_dir.iterdir() if path.is_dir()):
        role = role_dir.name
        try:
            specs = load_specs(role_dir)
        except (SpecError, yaml.YAMLError) as error:
            raise SpecError(f"role {role}: {error}") from error
        if specs is None:
            if warn:
                print(f"gen-variables-doc: roles/{role} has no argument spec; left out", file=sys.stderr)
            continue
        title = f"Role {role}"
        index.append(f"- [`securestack.pki.{role}`](#{anchor(title)})")
        lines = [f"## {title}", "", f"`securestack.pki.{role}`: [README](../roles/{role}/README.md)."]
        for entry in entry_point_order(list(specs)):
            spec = specs[entry] or {}
            if not isinstance(spec, dict):
                raise SpecError(f"role {role}, entry point {entry}: expected a mapping")
            lines += ["", f"### {role}: entry point `{entry}`", ""]
            if entry != "main":
                lines += [
                    f"Used with `tasks_from: {entry}` (`ansible.builtin.include_role` or `import_role`).",
                    "",
                ]
            short = " ".join(str(spec.get("short_description") or "").split())
            if short:
                lines += [render_markup(short), ""]
            for paragraph in paragraphs(spec.get("description")):
                lines += [render_markup(paragraph), ""]
            if "version_added" in spec:
                lines += [f"Added in {_escape_text(str(spec['version_added']))}.", ""]
            options = spec.get("options") or {}
            if not options:
                lines.append("This entry point takes no options.")
                continue
            try:
                rows = option_rows(options)
            except SpecError as error:
                raise SpecError(f"role {role}, entry point {entry}: {error}") from error
            lines += [
                "| Variable | Type | Default | Choices | Required | Description |",
                "| --- | --- | --- | --- | --- | --- |",
                *rows,
            ]
        sections.append("\n".join(lines))
    header = [
        "# Role variables",
        "",
        "<!-- Generated by scripts/gen-variables-doc.py from roles/*/meta/argument_specs.yml: do not edit. -->",
        "",
        "Every variable of every role of `securestack.pki`, generated from the roles'",
        "argument specs (`meta/argument_specs.yml`), which Ansible also uses to check",
        "the variables when a role starts. Regenerate after changing a spec:",
        f"`{COMMAND}` (`make unit` fails while this file is out of date).",
        "",
        "Defaults are shown as YAML flow values; a default containing `{{ }}` is",
        "evaluated when the role runs. Options of list and dict variables follow",
        "their variable as `variable[].option` (each list element) or `variable.option`.",
        "",
        *index,
    ]
    return "\n".join(header) + "\n\n" + "\n\n".join(sections) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the output file is out of date")
    parser.add_argument("--roles-dir", type=Path, default=ROOT / "roles", help="default: roles/ of this checkout")
    parser.add_argument("--output", type=Path, default=ROOT / DEFAULT_OUTPUT, help="default: docs/variables.md")
    args = parser.parse_args(argv)
    try:
        text = render(args.roles_dir)
    except SpecError as error:
        print(f"gen-variables-doc: {error}", file=sys.stderr)
        return 2
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
        if current == text:
            return 0
        diff = list(
            difflib.unified_diff(
                current.splitlines(), text.splitlines(), f"{args.output} (current)", "(generated)", lineterm="", n=1
            )
        )
        shown = "\n".join(diff[:40]) + ("\n..." if len(diff) > 40 else "")
        print(
            f"{args.output} is out of date with the roles' argument specs; regenerate it with `{COMMAND}`.\n{shown}",
            file=sys.stderr,
        )
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
