"""`trenv airlock verify`: a recipient checks a bundle against its disclosure record."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tests.airlock.test_bundle import _rewrite, bundle
from trenv.cli import app

runner = CliRunner()


def test_verify_accepts_an_intact_bundle(tmp_path: Path) -> None:
    path = tmp_path / "release.zip"
    path.write_bytes(bundle())
    result = runner.invoke(app, ["airlock", "verify", str(path)])
    assert result.exit_code == 0, result.output
    assert "every file matches" in result.output and "request 7" in result.output


def test_verify_fails_on_a_changed_file(tmp_path: Path) -> None:
    path = tmp_path / "release.zip"
    path.write_bytes(_rewrite(bundle(), "files/outputs/t.csv", b"region,count\nnoord,3\n"))
    result = runner.invoke(app, ["airlock", "verify", str(path)])
    assert result.exit_code == 1
    assert "MISMATCH files/outputs/t.csv" in result.output


def test_verify_refuses_a_file_that_is_not_a_bundle(tmp_path: Path) -> None:
    path = tmp_path / "notes.zip"
    path.write_text("not a zip")
    result = runner.invoke(app, ["airlock", "verify", str(path)])
    assert result.exit_code == 2 and "not a readable trenv bundle" in result.output
