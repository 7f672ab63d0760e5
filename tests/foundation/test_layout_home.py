"""The on-disk layout and the manifest each have one home (trenv/layout.py, vault/manifest.py).

Read from the source with ``ast``, so a new module that spells a path under a settings root,
reads ``manifest.json`` itself or reaches into the hub for a path fails here with its name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import trenv

PACKAGE = Path(trenv.__file__).parent
ROOTS = {"home", "vault_dir", "projects_dir", "workspaces_dir", "airlock_dir", "retention_dir"}
LAYOUT_OWNERS = {"layout.py", "config.py"}


def _modules() -> list[tuple[str, ast.Module]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if "/migrations/" in relative:
            continue  # a migration is frozen history
        found.append((relative, ast.parse(path.read_text(encoding="utf-8"))))
    return found


def _settings_root(node: ast.expr) -> str | None:
    """``settings.projects_dir`` (or ``self.settings.home`` …) as the left of a ``/``."""
    if isinstance(node, ast.Attribute) and node.attr in ROOTS:
        owner = node.value
        name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
        if "settings" in name:
            return node.attr
    return None


def test_paths_under_a_settings_root_are_spelled_only_in_layout() -> None:
    offenders = []
    for relative, tree in _modules():
        if relative in LAYOUT_OWNERS:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                root = _settings_root(node.left)
                if root is not None:
                    offenders.append(f"{relative}:{node.lineno} settings.{root} / ...")
    assert offenders == [], "use trenv.layout for these paths:\n" + "\n".join(offenders)


def test_only_the_vault_reads_or_writes_manifest_json() -> None:
    offenders = [
        f"{relative}:{node.lineno}"
        for relative, tree in _modules()
        if relative != "vault/manifest.py"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value == "manifest.json"
    ]
    assert offenders == [], "read the manifest through trenv.vault.manifest:\n" + "\n".join(
        offenders
    )


def test_the_airlock_and_the_web_do_not_import_the_hub_for_paths() -> None:
    offenders = []
    for relative, tree in _modules():
        if not relative.startswith(("airlock/", "web/", "admin/", "privacy/", "vault/")):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "") == "trenv.hub.launch":
                offenders.append(f"{relative}:{node.lineno}")
    assert offenders == []
