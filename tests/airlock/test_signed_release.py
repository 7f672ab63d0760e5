"""A real release is signed by the installation and witnesses the audit chain's head; the
documented plain-Python check works on it (SQLite and PostgreSQL)."""

from __future__ import annotations

import ast
import io
import json
import re
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.airlock.test_bundle import OTHER_KEY, edit_file_and_record
from tests.airlock.test_service_rounds import as_, submitted, vote_all, ws  # noqa: F401 (fixture)
from trenv import audit, signing
from trenv.airlock.bundle import RECORD_NAME, check_bundle
from trenv.airlock.queries import content_store
from trenv.airlock.release import release
from trenv.cli import app
from trenv.config import Settings
from trenv.store.models import AuditEvent, Decision

Tx = Callable[[], AbstractContextManager[Session]]
DOCS = Path(__file__).parents[2] / "docs" / "airlock.md"
runner = CliRunner()


@pytest.fixture
def released(ws: Path, settings: Settings, tx: Tx) -> bytes:  # noqa: F811
    """The bytes of a bundle released through the airlock, as the requester downloads them."""
    with tx() as session:
        rid = submitted(session, settings)
    for checker in ("chris", "kim"):
        with tx() as session:
            vote_all(session, settings, rid, checker, Decision.approve)
    with tx() as session:
        sha = release(session, settings, as_(session, rid, "rita")).bundle_sha256
    assert sha is not None
    return content_store(settings).get(sha)


def record_of(data: bytes) -> dict:  # type: ignore[type-arg]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return json.loads(zf.read(RECORD_NAME))  # type: ignore[no-any-return]


def test_the_first_release_makes_the_signing_key_and_audits_it(
    released: bytes, settings: Settings, tx: Tx
) -> None:
    path = signing.key_path(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    identity = signing.read_identity(settings)
    assert identity is not None
    with tx() as session:
        made = list(audit.events(session, action_prefix="system.signing_key"))
    assert [json.loads(e.detail)["fingerprint"] for e in made] == [identity.fingerprint]


def test_a_released_bundle_is_signed_and_carries_the_audit_head(
    released: bytes, settings: Settings, tx: Tx
) -> None:
    identity = signing.read_identity(settings)
    assert identity is not None
    checked = check_bundle(released, {identity.fingerprint})
    assert checked.ok, checked.problems
    assert checked.signer == identity
    record = record_of(released)
    assert record["signer"] == identity.as_record()
    head = record["audit_head"]
    with tx() as session:
        event = session.get(AuditEvent, head["event_id"])
        assert event is not None and event.hash == head["hash"]
        bundle_event = next(audit.events(session, action_prefix="airlock.bundle"))
    # the release moved the request to "released" before the record was signed
    assert record["history"][-1]["to"] == "released"
    assert json.loads(bundle_event.detail)["audit_head"] == head
    assert bundle_event.id == head["event_id"] + 1


def test_trenv_airlock_verify_checks_a_real_bundle(
    released: bytes, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "trenv-release-reoffending-1.zip"
    path.write_bytes(released)
    result = runner.invoke(app, ["airlock", "verify", str(path)])  # this installation's key
    assert result.exit_code == 0, result.output
    identity = signing.read_identity(settings)
    assert identity is not None
    flat = " ".join(result.output.split())
    assert f"signed by {identity.describe()}" in flat
    path.write_bytes(edit_file_and_record(released))
    result = runner.invoke(app, ["airlock", "verify", str(path)])
    assert result.exit_code == 1 and "does not match its signature" in result.output


def documented_snippet() -> str:
    """The block in docs/airlock.md that starts with `# verify_release.py`, exactly."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    found = [b for b in blocks if b.startswith("# verify_release.py")]
    assert len(found) == 1, "docs/airlock.md must hold one verify_release.py block"
    return found[0]


def test_the_documented_snippet_needs_only_the_standard_library_and_cryptography() -> None:
    imported = set()
    for node in ast.walk(ast.parse(documented_snippet())):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {"cryptography"}


def run_snippet(tmp_path: Path, bundle: bytes, public_key: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    script = tmp_path / "verify_release.py"
    script.write_text(documented_snippet())
    path = tmp_path / "bundle.zip"
    path.write_bytes(bundle)
    return subprocess.run(
        [sys.executable, str(script), str(path), public_key],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )


def test_the_documented_snippet_verifies_a_real_bundle(
    released: bytes, settings: Settings, tmp_path: Path
) -> None:
    identity = signing.read_identity(settings)
    assert identity is not None
    done = run_snippet(tmp_path, released, identity.public_key)
    assert done.returncode == 0, done.stderr
    request_id = record_of(released)["request"]["id"]
    assert done.stdout.strip() == f"OK: signed by {identity.installation}, request {request_id}"


def test_the_documented_snippet_refuses_a_forged_or_foreign_bundle(
    released: bytes, settings: Settings, tmp_path: Path
) -> None:
    identity = signing.read_identity(settings)
    assert identity is not None
    forged = run_snippet(tmp_path, edit_file_and_record(released), identity.public_key)
    assert forged.returncode != 0 and "InvalidSignature" in forged.stderr
    foreign = run_snippet(tmp_path, released, OTHER_KEY.identity.public_key)
    assert foreign.returncode != 0 and "InvalidSignature" in foreign.stderr
    with zipfile.ZipFile(io.BytesIO(released)) as zf:
        name = next(n for n in zf.namelist() if n.startswith("files/"))
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(released)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.namelist():
            dst.writestr(item, b"changed" if item == name else src.read(item))
    changed = run_snippet(tmp_path, out.getvalue(), identity.public_key)
    assert changed.returncode != 0 and f"{name} is not a file the checkers approved" in (
        changed.stderr
    )
