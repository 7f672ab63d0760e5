"""`trenv airlock verify`: a recipient checks a bundle's signature and files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.airlock.test_bundle import (
    KEY,
    OTHER_KEY,
    _rewrite,
    _with_directory_entries,
    bundle,
    edit_file_and_record,
)
from trenv import signing
from trenv.cli import app
from trenv.config import Settings, get_settings

runner = CliRunner()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installation directory without a signing key unless a test makes one."""
    path = tmp_path / "home"
    monkeypatch.setenv("TRENV_HOME", str(path))
    monkeypatch.delenv("TRENV_CONFIG", raising=False)
    get_settings.cache_clear()
    return path


def run_verify(tmp_path: Path, data: bytes, *options: str) -> tuple[int, str]:
    path = tmp_path / "release.zip"
    path.write_bytes(data)
    result = runner.invoke(app, ["airlock", "verify", str(path), *options])
    return result.exit_code, " ".join(result.output.split())  # as one line: Rich wraps


def test_verify_accepts_an_intact_bundle_naming_its_signer(tmp_path: Path) -> None:
    code, output = run_verify(tmp_path, bundle(), "--key", KEY.identity.public_key)
    assert code == 0, output
    assert "every file matches" in output and "request 7" in output
    assert "signed by installation 'justice-tre'" in output


def test_verify_fails_on_a_changed_file(tmp_path: Path) -> None:
    tampered = _rewrite(bundle(), "files/outputs/t.csv", b"region,count\nnoord,3\n")
    code, output = run_verify(tmp_path, tampered, "--key", KEY.identity.public_key)
    assert code == 1
    assert "MISMATCH files/outputs/t.csv" in output


def test_verify_fails_when_a_file_and_the_record_were_edited_together(tmp_path: Path) -> None:
    forged = edit_file_and_record(bundle())
    code, output = run_verify(tmp_path, forged, "--key", KEY.identity.public_key)
    assert code == 1
    assert "SIGNATURE disclosure-record.json does not match its signature" in output
    assert "the record was changed after installation 'justice-tre'" in output
    assert "MISMATCH" not in output  # the forger made the files fit the record
    assert "NOT verified" in output


def test_verify_fails_on_another_installations_bundle_naming_it(tmp_path: Path) -> None:
    code, output = run_verify(tmp_path, bundle(OTHER_KEY), "--key", KEY.identity.fingerprint)
    assert code == 1
    assert "UNTRUSTED the record is signed by installation 'elsewhere-tre'" in output
    assert OTHER_KEY.identity.fingerprint in output


def test_verify_trusts_this_installations_key_by_default(tmp_path: Path) -> None:
    key, created = signing.ensure_signing_key(Settings(), "this-tre")
    assert created
    code, output = run_verify(tmp_path, bundle(key))
    assert code == 0, output
    assert "signed by installation 'this-tre'" in output
    code, output = run_verify(tmp_path, bundle(OTHER_KEY))
    assert code == 1 and "'elsewhere-tre'" in output


def test_verify_reads_the_key_from_the_published_file(tmp_path: Path) -> None:
    published = tmp_path / "signing-key.json"
    published.write_text(json.dumps(KEY.identity.as_record()))
    code, output = run_verify(tmp_path, bundle(), "--key", str(published))
    assert code == 0, output


def test_verify_without_a_trusted_key_asks_for_one(tmp_path: Path) -> None:
    code, output = run_verify(tmp_path, bundle())
    assert code == 2 and "pass --key" in output


def test_verify_refuses_a_key_it_cannot_read(tmp_path: Path) -> None:
    code, output = run_verify(tmp_path, bundle(), "--key", "sha256:abc")
    assert code == 2 and "64 hex digits" in output


def test_verify_accepts_directory_entries_of_a_re_zipped_bundle(tmp_path: Path) -> None:
    rezipped = _with_directory_entries(bundle())
    code, output = run_verify(tmp_path, rezipped, "--key", KEY.identity.public_key)
    assert code == 0, output


def test_verify_refuses_a_file_that_is_not_a_bundle(tmp_path: Path) -> None:
    path = tmp_path / "notes.zip"
    path.write_text("not a zip")
    result = runner.invoke(app, ["airlock", "verify", str(path)])
    assert result.exit_code == 2 and "not a readable trenv bundle" in result.output


def test_verify_loads_no_database_dataframe_or_plotting_code(tmp_path: Path) -> None:
    """What made `verify` slow (4-21 s): every command group imported at start."""
    path = tmp_path / "release.zip"
    path.write_bytes(bundle())
    script = (
        "import sys\n"
        "from trenv.cli import main\n"
        f"sys.argv = ['trenv', 'airlock', 'verify', {str(path)!r}, "
        f"'--key', {KEY.identity.public_key!r}]\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "heavy = ('sqlalchemy', 'pandas', 'numpy', 'matplotlib', 'scipy', 'polars', "
        "'duckdb', 'splink', 'alembic', 'opendp', 'docker', 'trenv.store', 'trenv.vault')\n"
        "print('LOADED', sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout, done.stdout
