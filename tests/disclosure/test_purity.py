"""The engine is pure and the researcher API never reaches for the database layer."""

from __future__ import annotations

import json
import subprocess
import sys


def _modules_after(statement: str) -> set[str]:
    code = f"{statement}; import sys, json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def test_disclosure_imports_nothing_else_from_trenv() -> None:
    mods = _modules_after("import trenv.disclosure")
    others = {m for m in mods if m.startswith("trenv.") and not m.startswith("trenv.disclosure")}
    assert others == set()
    assert not {"sqlalchemy", "requests", "urllib3"} & mods


def test_lab_never_imports_the_store() -> None:
    mods = _modules_after("import trenv.lab")
    assert not any(m.startswith(("trenv.store", "sqlalchemy")) for m in mods)
