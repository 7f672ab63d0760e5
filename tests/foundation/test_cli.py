"""Every `trenv` command through the CLI runner, with its error paths (SQLite and PostgreSQL).

Errors exit with status 2 and write nothing: each error test checks the audit log's length.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.foundation.test_audit import tamper
from trenv.cli import app
from trenv.config import Settings
from trenv.store.migrate import head_revision

runner = CliRunner()


def trenv(*args: str, expect: int = 0) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code == expect, f"trenv {' '.join(args)} -> {result.exit_code}\n{output}"
    return output


def audit_length() -> int:
    return len(json.loads(trenv("audit", "tail", "-n", "100000", "--json")))


def refused(*args: str, message: str) -> None:
    """The command fails with exit 2, names the problem, and writes nothing."""
    before = audit_length()
    output = trenv(*args, expect=2)
    assert message in " ".join(output.split()), output
    assert audit_length() == before


@pytest.fixture
def cli_world(settings: Settings, tmp_path: Path) -> Path:
    trenv("user", "add", "stella", "--role", "steward", "--full-name", "Stella Steward")
    trenv("user", "add", "adam", "--role", "admin")
    trenv("user", "add", "carl")
    trenv("user", "add", "rita")
    trenv("org", "add", "om", "--name", "Openbaar Ministerie")
    trenv("org", "add-controller", "om", "carl")
    trenv("project", "create", "reoffending", "--title", "Reoffending", "--end-date", "2099-12-31")
    data = tmp_path / "convictions.parquet"
    pq.write_table(pa.table({"person": ["p1", "p2", "p3"], "offence": [1, 2, 3]}), data)
    codebook = tmp_path / "codebook.yaml"
    codebook.write_text("columns:\n  person: {label: pseudonym}\n  offence: {label: code}\n")
    trenv(
        "dataset", "register", "convictions", "--supplier", "om", "--version", "2026-10",
        "--file", str(data), "--codebook", str(codebook),
    )  # fmt: skip
    return tmp_path


def test_version() -> None:
    from trenv import __version__

    assert trenv("version").strip() == __version__


def test_commands_refuse_an_uninitialised_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRENV_HOME", str(tmp_path / "fresh"))
    monkeypatch.delenv("TRENV_DATABASE_URL", raising=False)
    output = trenv("user", "list", expect=2)
    assert "trenv init" in output


def test_init_and_db_upgrade_are_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRENV_HOME", str(tmp_path / "fresh"))
    monkeypatch.delenv("TRENV_DATABASE_URL", raising=False)
    assert "ready" in trenv("init")
    trenv("init")
    assert (tmp_path / "fresh" / "vault").is_dir()
    assert f"database at {head_revision()}" in trenv("db", "upgrade")
    assert trenv("db", "current").strip() == head_revision()
    events = json.loads(trenv("audit", "tail", "--json"))
    assert [e["action"] for e in events] == ["system.init"]


def test_users(cli_world: Path) -> None:
    listed = json.loads(trenv("user", "list", "--json"))
    assert [u["username"] for u in listed] == ["adam", "carl", "rita", "stella"]
    shown = json.loads(trenv("user", "show", "stella", "--json"))
    assert shown["roles"] == ["steward"] and shown["full_name"] == "Stella Steward"
    assert "stella" in trenv("user", "list")
    refused("user", "add", "stella", message="already exists")
    refused("user", "add", "Bad Name", message="is not valid")
    refused("user", "add", "eve", "--role", "root", message="unknown role 'root'")
    refused("user", "show", "nobody", message="unknown user 'nobody'")


def test_organisations(cli_world: Path) -> None:
    orgs = json.loads(trenv("org", "list", "--json"))
    assert orgs == [{"slug": "om", "name": "Openbaar Ministerie", "controllers": ["carl"]}]
    assert "Openbaar" in trenv("org", "list")
    refused("org", "add", "om", message="already exists")
    refused("org", "add", "O M", message="not a valid slug")
    refused("org", "add-controller", "om", "carl", message="already a data controller")
    refused("org", "add-controller", "nfi", "carl", message="unknown organisation")
    refused("org", "add-controller", "om", "nobody", message="unknown user")


def test_projects(cli_world: Path) -> None:
    trenv("project", "add-member", "reoffending", "rita")
    trenv("project", "add-member", "reoffending", "stella", "--role", "lead")
    shown = json.loads(trenv("project", "show", "reoffending", "--json"))
    assert shown["members"] == [
        {"user": "rita", "role": "researcher"},
        {"user": "stella", "role": "lead"},
    ]
    assert shown["active"] and shown["policy_profile"] == "trenv-default"
    assert "reoffending" in trenv("project", "list")
    assert json.loads(trenv("project", "list", "--json"))[0]["slug"] == "reoffending"
    assert "Members" in trenv("project", "show", "reoffending")
    trenv("project", "remove-member", "reoffending", "stella")
    refused("project", "remove-member", "reoffending", "stella", message="not a member")
    refused(
        "project", "create", "reoffending", "--title", "x", "--end-date", "2099-01-01",
        message="already exists",
    )  # fmt: skip
    refused(
        "project", "create", "old", "--title", "x", "--end-date", "2001-01-01",
        message="is in the past",
    )  # fmt: skip
    refused(
        "project", "create", "odd", "--title", "x", "--end-date", "31-12-2099",
        message="is not a date",
    )  # fmt: skip
    refused("project", "add-member", "reoffending", "nobody", message="unknown user")
    refused("project", "add-member", "nowhere", "rita", message="unknown project")
    refused("project", "add-member", "reoffending", "rita", message="already a member")
    refused(
        "project", "add-member", "reoffending", "carl", "--role", "boss",
        message="unknown member role",
    )  # fmt: skip
    refused("project", "show", "nowhere", message="unknown project")
    refused(
        "project", "create", "odd2", "--title", "x", "--end-date", "2099-01-01",
        "--policy", "lenient", message="unknown disclosure policy profile 'lenient'",
    )  # fmt: skip


def test_datasets(cli_world: Path) -> None:
    listed = json.loads(trenv("dataset", "list", "--json"))
    assert listed[0]["rows"] == 3 and listed[0]["supplier"] == "om"
    shown = json.loads(trenv("dataset", "show", "convictions", "--json"))
    assert set(shown["codebook"]["columns"]) == {"person", "offence"}
    assert "convictions@2026-10" in trenv("dataset", "list")
    data = cli_world / "convictions.parquet"
    refused(
        "dataset", "register", "convictions", "--supplier", "om", "--version", "2026-10",
        "--file", str(data), message="immutable",
    )  # fmt: skip
    refused(
        "dataset", "register", "seizures", "--supplier", "om", "--version", "1",
        "--file", str(cli_world / "missing.parquet"), message="no file at",
    )  # fmt: skip
    refused(
        "dataset", "register", "seizures", "--supplier", "om", "--version", "1",
        "--file", str(data), "--classification", "secret", message="unknown classification",
    )  # fmt: skip
    bad_codebook = cli_world / "bad.yaml"
    bad_codebook.write_text("- just\n- a list\n")
    refused(
        "dataset", "register", "seizures", "--supplier", "om", "--version", "1",
        "--file", str(data), "--codebook", str(bad_codebook), message="is not a mapping",
    )  # fmt: skip
    refused("dataset", "show", "nothing", message="unknown dataset")


def test_csv_row_count(cli_world: Path) -> None:
    csv = cli_world / "cases.csv"
    csv.write_text("case,offence\n1,a\n2,b\n3,c")  # no final newline
    trenv(
        "dataset", "register", "cases", "--supplier", "om", "--version", "1", "--file", str(csv)
    )  # fmt: skip
    assert json.loads(trenv("dataset", "show", "cases", "--json"))["rows"] == 3


def test_grants_four_eyes(cli_world: Path) -> None:
    refused("grant", "add", "reoffending", "convictions", message="pass --as USER")
    refused("--as", "rita", "grant", "add", "reoffending", "convictions", message="may not propose")
    refused(
        "--as", "stella", "grant", "add", "reoffending", "convictions", "--columns", "bsn",
        message="no column(s) bsn",
    )  # fmt: skip
    refused(
        "--as", "stella", "grant", "add", "reoffending", "convictions", "--expires",
        "2001-01-01", message="in the past",
    )  # fmt: skip
    trenv("--as", "stella", "grant", "add", "reoffending", "convictions", "--columns", "offence")
    refused("--as", "stella", "grant", "approve", "1", message="cannot also approve")
    refused("--as", "adam", "grant", "approve", "1", message="not a data controller")
    refused("--as", "carl", "grant", "approve", "9", message="unknown grant #9")
    trenv("--as", "carl", "grant", "approve", "1")
    refused("--as", "carl", "grant", "approve", "1", message="is active, not proposed")
    listed = json.loads(trenv("grant", "list", "--project", "reoffending", "--json"))
    assert listed[0]["effective"] and listed[0]["approved_by"] == "carl"
    assert listed[0]["columns"] == ["offence"]
    assert "carl" in trenv("grant", "list")
    refused("--as", "rita", "grant", "revoke", "1", message="may not revoke")
    trenv("--as", "stella", "grant", "revoke", "1", "--reason", "project paused")
    assert json.loads(trenv("grant", "list", "--json"))[0]["status"] == "revoked"
    refused("--as", "stella", "grant", "revoke", "1", message="already revoked")
    refused("grant", "list", "--project", "nowhere", message="unknown project")


def test_images(cli_world: Path, settings: Settings) -> None:
    from trenv.registry import images
    from trenv.store import transaction

    assert json.loads(trenv("image", "list", "--json")) == []
    with transaction(settings) as session:
        images.record_image(
            session, actor="t", name="trenv/notebook", tag="1", digest="sha256:" + "1" * 64
        )
    refused("project", "set-image", "reoffending", "trenv/notebook:1", message="not approved")
    refused("--as", "stella", "image", "approve", "trenv/notebook:1", message="Only admins")
    refused("--as", "adam", "image", "approve", "trenv/notebook", message="has no tag")
    refused("--as", "adam", "image", "approve", "trenv/other:1", message="unknown image")
    trenv("--as", "adam", "image", "approve", "trenv/notebook:1")
    assert json.loads(trenv("image", "list", "--json"))[0]["approved_by"] == "adam"
    assert "trenv/notebook:1" in trenv("image", "list")
    trenv("project", "set-image", "reoffending", "trenv/notebook:1")
    assert json.loads(trenv("project", "show", "reoffending", "--json"))["image"] == (
        "trenv/notebook:1"
    )


def test_audit_verify_and_tail(cli_world: Path, settings: Settings) -> None:
    assert "audit chain intact: 8 events" in trenv("audit", "verify")
    assert json.loads(trenv("audit", "verify", "--json"))["ok"] is True
    tail = json.loads(trenv("audit", "tail", "-n", "2", "--json"))
    assert [e["action"] for e in tail] == ["project.create", "dataset.register"]
    assert "dataset.register" in trenv("audit", "tail")
    tamper(settings, "UPDATE audit_events SET actor = 'mallory' WHERE id = 3")
    output = trenv("audit", "verify", expect=1)
    assert "event 3 was edited" in output


def test_audit_verify_detects_a_deleted_row(cli_world: Path, settings: Settings) -> None:
    tamper(settings, "DELETE FROM audit_events WHERE id = 5")
    assert "event 5 is missing" in " ".join(trenv("audit", "verify", expect=1).split())


def test_password_and_mfa_commands(cli_world: Path, settings: Settings) -> None:
    import pyotp

    from trenv.registry import credentials
    from trenv.store import transaction

    result = runner.invoke(
        app, ["user", "set-password", "rita", "--password-stdin"], input="a long passphrase\n"
    )
    assert result.exit_code == 0, result.output
    before = audit_length()
    result = runner.invoke(
        app, ["user", "set-password", "rita", "--password-stdin"], input="short\n"
    )
    assert result.exit_code == 2 and "too short" in result.output
    assert audit_length() == before
    enrolled = json.loads(trenv("user", "reset-mfa", "rita", "--json"))
    assert enrolled["otpauth_uri"].startswith("otpauth://totp/")
    with transaction(settings) as session:
        outcome = credentials.verify_login(
            session,
            username="rita",
            password="a long passphrase",
            otp=pyotp.TOTP(enrolled["totp_secret"]).now(),
        )
    assert outcome.ok
    assert "secret:" in trenv("user", "reset-mfa", "rita")
    refused("user", "reset-mfa", "nobody", message="unknown user")


def test_budget_commands(cli_world: Path) -> None:
    trenv("budget", "set", "reoffending", "convictions", "--rho", "1.5")
    trenv("budget", "set", "reoffending", "seizures", "--rho", "0.5")
    shown = json.loads(trenv("budget", "show", "reoffending", "--json"))
    assert [(b["dataset"], b["rho_total"], b["rho_spent"]) for b in shown] == [
        ("convictions", 1.5, 0.0),
        ("seizures", 0.5, 0.0),
    ]
    assert "convictions" in trenv("budget", "show", "reoffending")
    refused("budget", "set", "reoffending", "convictions", "--rho", "0", message="positive")
    refused("budget", "set", "nowhere", "convictions", "--rho", "1", message="unknown project")
