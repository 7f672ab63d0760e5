"""The reference pages cover what they describe, in the manner of Datasette's test_docs.py:
every `trenv` command and its options in docs/cli.md, every setting in docs/settings.md,
every audit action in docs/audit.md; and nothing documented there that does not exist."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer

from trenv.audit_actions import AuditAction
from trenv.cli import GROUPS, app
from trenv.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
HEADING = re.compile(r"^(#{1,6}) (.+?)\s*$", re.MULTILINE)


def _sections(page: str) -> dict[str, str]:
    """Each heading's text (without the #s) -> the text up to the next heading of its level
    or above."""
    text = (DOCS / page).read_text(encoding="utf-8")
    found = list(HEADING.finditer(text))
    sections: dict[str, str] = {}
    for index, match in enumerate(found):
        level = len(match.group(1))
        end = next((m.start() for m in found[index + 1 :] if len(m.group(1)) <= level), len(text))
        sections[match.group(2)] = text[match.end() : end]
    return sections


def _walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    if hasattr(command, "list_commands"):  # a group; the root loads its lazy GROUPS here
        for name in command.list_commands(None):
            yield from _walk(command.commands[name], (*path, name))
    else:
        yield path, command


@cache
def _commands() -> dict[str, Any]:
    """'group command' -> the click command, for every command of every group."""
    root = typer.main.get_command(app)
    found = {" ".join(path): command for path, command in _walk(root, ())}
    assert {name.split()[0] for name in found} >= set(GROUPS), "a group was not walked"
    return found


def _options(command: Any) -> list[str]:
    """The long (else short) spelling of each option; arguments are positional."""
    return [
        max(p.opts, key=len)
        for p in command.params
        if p.param_type_name == "option" and "completion" not in p.name
    ]


def test_every_command_has_a_section_in_cli_md() -> None:
    headings = (re.fullmatch(r"`trenv ([a-z0-9 -]+)`", h) for h in _sections("cli.md"))
    documented = {m.group(1) for m in headings if m}
    missing = sorted(set(_commands()) - documented)
    assert missing == [], f"add a '### `trenv COMMAND`' section to docs/cli.md for {missing}"
    stale = sorted(documented - set(_commands()))
    assert stale == [], f"docs/cli.md documents commands that do not exist: {stale}"


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_option_of_a_command_is_in_its_section(name: str) -> None:
    section = _sections("cli.md")[f"`trenv {name}`"]
    missing = [o for o in _options(_commands()[name]) if o not in section]
    assert missing == [], f"docs/cli.md, `trenv {name}`: say what {missing} do"


def test_the_root_options_are_in_cli_md() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    root = typer.main.get_command(app)
    assert [o for o in _options(root) if o not in text] == []


def test_every_setting_has_a_section_in_settings_md() -> None:
    sections = _sections("settings.md")
    documented = {h.strip("`") for h in sections if re.fullmatch(r"`TRENV_[A-Z0-9_]+`", h)}
    wanted = {f"TRENV_{name.upper()}" for name in Settings.model_fields}
    assert sorted(wanted - documented) == [], "add a section per setting to docs/settings.md"
    assert sorted(documented - wanted) == [], "docs/settings.md documents unknown settings"
    for name in Settings.model_fields:
        section = sections[f"`TRENV_{name.upper()}`"]
        assert f"TOML key `{name}`" in section, name


def test_every_audit_action_has_a_row_in_audit_md() -> None:
    """Rows are `| `action` | object | description |`, the description as in the code."""
    text = (DOCS / "audit.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z_.]+)` \| [^|]+ \| (.+?) \|$", text, re.MULTILINE)
    documented = dict(rows)
    assert len(documented) == len(rows), "an action has two rows in docs/audit.md"
    members = {a.value: a.description for a in AuditAction}
    assert sorted(set(members) - set(documented)) == [], "add these rows to docs/audit.md"
    assert sorted(set(documented) - set(members)) == [], "docs/audit.md lists unknown actions"
    differ = {a: (documented[a], d) for a, d in members.items() if documented[a] != d}
    assert differ == {}, "docs/audit.md and AuditAction's descriptions disagree"


def test_the_reference_pages_are_listed_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in ("cli.md", "settings.md", "audit.md"):
        assert f"(docs/{page})" in readme, page
