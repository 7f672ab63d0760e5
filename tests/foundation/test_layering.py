"""The demo stays outside the core: no module of trenv but the CLI imports ``trenv.demo``.

``trenv.demo`` (generated logins, synthetic population, notebook runner) is not part of the
TRE's trust boundary. Reading every module's source with ``ast`` catches an import wherever
it sits (top level or inside a function) without importing anything.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import trenv

PACKAGE = Path(trenv.__file__).parent
DEMO = "trenv.demo"
ALLOWED = ("trenv.demo", "trenv.cli")  # the demo itself, and the commands that run it


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute name ``from <...> import`` refers to, relative imports resolved."""
    if node.level == 0:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
    return f"{base}.{node.module}" if node.module else base


def _imported(path: Path) -> Iterator[tuple[int, str]]:
    """Every module name ``path`` imports (``from a import b`` yields a and a.b)."""
    module = _module_name(path)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, path, node)
            yield node.lineno, base
            yield from ((node.lineno, f"{base}.{alias.name}") for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def _is_demo(name: str) -> bool:
    return name == DEMO or name.startswith(DEMO + ".")


def _inside(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _demo_imports(*, inside: bool, packages: tuple[str, ...]) -> list[str]:
    """Imports of trenv.demo by modules inside ``packages`` (or, with inside=False, outside)."""
    return [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if _inside(_module_name(path), packages) == inside
        for line, name in _imported(path)
        if _is_demo(name)
    ]


def test_only_the_cli_imports_the_demo() -> None:
    assert _demo_imports(inside=False, packages=ALLOWED) == []


def test_the_walk_sees_the_cli_importing_the_demo() -> None:
    # Guards the guard: a walker that found no imports at all would pass the test above.
    found = _demo_imports(inside=True, packages=("trenv.cli",))
    assert any(f.startswith("trenv/cli/demo.py:") for f in found), found


def test_relative_imports_are_resolved() -> None:
    node = ast.parse("from ..demo import synth").body[0]
    assert isinstance(node, ast.ImportFrom)
    assert _absolute("trenv.vault.ingest", PACKAGE / "vault" / "ingest.py", node) == DEMO
