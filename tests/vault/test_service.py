"""The vault's bookkeeping against the registry and the audit log (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.support.world import OPERATOR, populate
from trenv import audit
from trenv.config import Settings
from trenv.demo.synth import SynthResult
from trenv.errors import Conflict, Invalid, NotFound
from trenv.hashing import file_sha256
from trenv.registry import datasets, grants, organisations, projects, users
from trenv.store.models import AuditEvent, Dataset, Grant, ProjectStatus
from trenv.vault import service
from trenv.vault.pseudonym import ProjectKeyDestroyedError
from trenv.vault.schema import builtin_schema_path


def _world(tx: Any) -> None:
    with tx() as session:
        populate(session)
        users.add_user(session, actor=OPERATOR, username="berta")  # population register
        users.add_user(session, actor=OPERATOR, username="paula")  # police
        for slug, controller in (("brp", "berta"), ("politie", "paula")):
            organisations.add_organisation(session, actor=OPERATOR, slug=slug, name=slug)
            organisations.add_controller(session, actor=OPERATOR, slug=slug, username=controller)
        projects.create_project(
            session,
            actor=OPERATOR,
            slug="cybercrime",
            title="Victims of cybercrime",
            end_date=dt.date(2099, 12, 31),
            policy_profile="trenv-default",
        )


def _ingest(tx: Any, settings: Settings, synth: SynthResult, name: str, supplier: str) -> str:
    request = service.IngestRequest(
        file=synth.out_dir / f"{name}.csv",
        dataset=name,
        supplier=supplier,
        schema=name,
        version="1",
    )
    return service.ingest_dataset(tx, settings, request, actor=OPERATOR).reference


def _actions(session: Session) -> list[str]:
    return [e.action for e in audit.events(session)]


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _grant(tx: Any, project: str, dataset: str, controller: str, columns: list[str] | None) -> int:
    with tx() as session:
        grant = grants.propose_grant(
            session, proposer="stella", project=project, dataset=dataset, columns=columns
        )
        grants.approve_grant(session, approver=controller, grant_id=grant.id)
        return grant.id


@pytest.fixture
def vault_world(tx: Any, settings: Settings, synth_tiny: SynthResult) -> Settings:
    _world(tx)
    _ingest(tx, settings, synth_tiny, "persons", "brp")
    _ingest(tx, settings, synth_tiny, "cyber_reports", "politie")
    _ingest(tx, settings, synth_tiny, "convictions", "om")
    return settings


def test_ingest_registers_the_version_with_codebook_and_audit(
    tx: Any, settings: Settings, synth_tiny: SynthResult
) -> None:
    _world(tx)
    schema_path = str(builtin_schema_path("convictions"))  # a path works as well as a name
    request = service.IngestRequest(
        synth_tiny.out_dir / "convictions.parquet", "convictions", "om", schema_path, "2026-11"
    )
    outcome = service.ingest_dataset(tx, settings, request, actor="stella")
    with tx() as session:
        dataset = datasets.get_dataset(session, "convictions@2026-11")
        assert dataset.row_count == outcome.rows == synth_tiny.rows["convictions"]
        assert dataset.sha256 == file_sha256(Path(dataset.path)) == outcome.sha256
        assert (
            Path(dataset.path) == settings.vault_dir / "datasets/convictions/2026-11/data.parquet"
        )
        assert "bsn" not in dataset.codebook["columns"]
        assert dataset.codebook["columns"]["person_pseudonym"]["role"] == "identifier"
        event = list(audit.events(session, action_prefix="data.ingest"))[-1]
        detail = json.loads(event.detail)
        assert (event.actor, event.object_id) == ("stella", "convictions@2026-11")
        assert detail["sha256"] == outcome.sha256 and detail["rows"] == outcome.rows
        assert _actions(session)[-2:] == ["dataset.register", "data.ingest"]


def test_refused_extract_leaves_nothing_but_the_refusal_event(
    tx: Any, settings: Settings, synth_tiny: SynthResult, tmp_path: Path
) -> None:
    _world(tx)
    lines = (synth_tiny.out_dir / "convictions.csv").read_text().splitlines()
    bad = tmp_path / "convictions.csv"
    # One BSN failing the 11-test and one unknown verdict code.
    lines[1] = lines[1].replace(lines[1].split(",")[2], '"123456789"')
    lines[2] = lines[2].replace('"veroordeling"', '"vrijspraak"')
    bad.write_text("\n".join(lines) + "\n")
    request = service.IngestRequest(bad, "convictions", "om", "convictions", "2")
    with pytest.raises(service.IngestRefused) as refused:
        service.ingest_dataset(tx, settings, request, actor="stella")
    assert refused.value.report.counts == {"invalid_bsn": 1, "not_in_code_list": 1}
    assert [(p.row, p.column) for p in refused.value.report.problems] == [
        (1, "bsn"),
        (2, "verdict"),
    ]
    assert _files(settings.vault_dir / "datasets") == []
    with tx() as session:
        assert session.scalar(select(Dataset).where(Dataset.version == "2")) is None
        event = list(audit.events(session))[-1]
        assert (event.action, event.object_id) == ("data.ingest.refused", "convictions@2")
        assert json.loads(event.detail)["problem_count"] == 2


def test_ingest_refuses_unknown_supplier_duplicate_version_and_unknown_schema(
    tx: Any, vault_world: Settings, synth_tiny: SynthResult
) -> None:
    settings = vault_world
    with tx() as session:
        events_before = len(_actions(session))
    files_before = _files(settings.vault_dir / "datasets")
    csv = synth_tiny.out_dir / "convictions.csv"
    cases = [
        (service.IngestRequest(csv, "convictions", "nfi", "convictions", "9"), NotFound, "nfi"),
        (service.IngestRequest(csv, "convictions", "om", "convictions", "1"), Conflict, "@1"),
        (service.IngestRequest(csv, "convictions", "om", "nonsense", "9"), Invalid, "built-in"),
        (service.IngestRequest(csv, "Convictions", "om", "convictions", "9"), Invalid, "name"),
    ]
    for request, error, text in cases:
        with pytest.raises(error, match=text):
            service.ingest_dataset(tx, settings, request, actor=OPERATOR)
    assert _files(settings.vault_dir / "datasets") == files_before
    # A directory without a registry row (an interrupted ingest) is reported, not overwritten.
    stale = settings.vault_dir / "datasets" / "convictions" / "9"
    stale.mkdir()
    with pytest.raises(Conflict, match="interrupted"):
        service.ingest_dataset(
            tx,
            settings,
            service.IngestRequest(csv, "convictions", "om", "convictions", "9"),
            actor=OPERATOR,
        )
    assert list(stale.iterdir()) == []
    with tx() as session:
        assert len(_actions(session)) == events_before


def test_files_go_when_the_registration_does_not_commit(
    tx: Any, settings: Settings, synth_tiny: SynthResult
) -> None:
    _world(tx)
    opened = 0

    @contextmanager
    def failing_second_commit() -> Iterator[Session]:
        nonlocal opened
        opened += 1
        with tx() as session:
            yield session
            if opened == 2:
                raise RuntimeError("database went away")

    request = service.IngestRequest(
        synth_tiny.out_dir / "persons.csv", "persons", "brp", "persons", "1"
    )
    with pytest.raises(RuntimeError):
        service.ingest_dataset(failing_second_commit, settings, request, actor=OPERATOR)
    assert opened == 2
    assert _files(settings.vault_dir / "datasets") == []
    with tx() as session:
        assert session.scalar(select(func.count()).select_from(Dataset)) == 1  # populate()'s


def test_link_registers_linked_version_with_report_and_quality(
    tx: Any, vault_world: Settings, synth_tiny: SynthResult
) -> None:
    settings = vault_world
    request = service.LinkRequest(
        "persons", ["cyber_reports", "convictions@1"], ground_truth=synth_tiny.ground_truth
    )
    outcome = service.link_datasets(tx, settings, request, actor="stella")
    assert outcome.registered == ["cyber_reports@1-linked"]
    with tx() as session:
        linked = datasets.get_dataset(session, "cyber_reports")  # the newest version
        assert linked.reference == "cyber_reports@1-linked"
        report = Path(linked.codebook[service.LINKAGE_REPORT_KEY])
        assert report == outcome.directory / "report.json" and report.is_file()
        assert {"person_pseudonym", "match_probability"} <= set(linked.codebook["columns"])
        assert linked.row_count == pq.read_metadata(linked.path).num_rows
        event = list(audit.events(session))[-1]
        assert event.action == "data.link" and event.object_id == outcome.run
        results = json.loads(event.detail)["results"]
        assert results["cyber_reports"]["precision"] >= 0.98
        assert results["cyber_reports"]["recall"] >= 0.95
        assert results["convictions"]["recall"] == 1.0
    # The same run again would overwrite nothing: the linked version exists already.
    runs_before = sorted((settings.vault_dir / "linkage").iterdir())
    with pytest.raises(Invalid, match="output of a linkage run"):
        service.link_datasets(tx, settings, request, actor="stella")  # names the newest
    again = service.LinkRequest("persons", ["cyber_reports@1"])
    with pytest.raises(Conflict, match="cyber_reports@1-linked"):
        service.link_datasets(tx, settings, again, actor="stella")
    assert sorted((settings.vault_dir / "linkage").iterdir()) == runs_before


def test_link_refuses_unlinkable_input_and_writes_nothing(tx: Any, vault_world: Settings) -> None:
    settings = vault_world
    for request, text in (
        (service.LinkRequest("persons", []), "no source"),
        (service.LinkRequest("persons", ["persons"]), "once"),
        (service.LinkRequest("persons", ["prison_stays"]), "unknown dataset"),
        (service.LinkRequest("cyber_reports", ["convictions"]), "spine"),
        (service.LinkRequest("persons", ["convictions@2026-10"]), "no file in the vault"),
    ):
        with pytest.raises((Invalid, NotFound), match=text):
            service.link_datasets(tx, settings, request, actor="stella")
    assert not (settings.vault_dir / "linkage").exists() or not any(
        (settings.vault_dir / "linkage").iterdir()
    )


def _publish(tx: Any, settings: Settings, slug: str) -> service.PublishOutcome:
    with tx() as session:
        return service.publish_project(session, settings, slug, actor="stella")


def test_publish_follows_effective_grants_and_keys_per_project(
    tx: Any, vault_world: Settings
) -> None:
    settings = vault_world
    columns = ["conviction_id", "person_pseudonym", "verdict"]
    first = _grant(tx, "reoffending", "convictions@1", "carl", columns)
    _grant(tx, "cybercrime", "convictions@1", "carl", None)
    a = _publish(tx, settings, "reoffending")
    b = _publish(tx, settings, "cybercrime")
    table_a = pq.read_table(a.data_dir / "convictions.parquet")
    table_b = pq.read_table(b.data_dir / "convictions.parquet")
    assert table_a.column_names == columns
    assert "case_id" in table_b.column_names and "bsn" not in table_b.column_names
    assert sorted(p.name for p in a.data_dir.iterdir()) == ["convictions.parquet", "manifest.json"]
    # Same records in the same order, unrelated pseudonyms and record keys; and neither
    # equals the vault's linkage pseudonym or the court's judgment number.
    vault_rows = pq.read_table(settings.vault_dir / "datasets/convictions/1/data.parquet")
    assert table_a.num_rows == table_b.num_rows == vault_rows.num_rows
    for column in ("conviction_id", "person_pseudonym"):
        in_a, in_b = set(table_a[column].to_pylist()), set(table_b[column].to_pylist())
        assert not in_a & in_b
        assert not in_a & set(vault_rows[column].to_pylist())
    with tx() as session:
        event = list(audit.events(session))[-1]
        detail = json.loads(event.detail)
        assert event.action == "data.publish" and event.object_id == "cybercrime"
        assert detail["datasets"][0]["sha256"] == b.datasets[0]["sha256"]
        grants.revoke_grant(session, actor="stella", grant_id=first)
    withdrawn = _publish(tx, settings, "reoffending")
    assert withdrawn.withdrawn and withdrawn.removed == ["convictions"]
    assert not (settings.projects_dir / "reoffending" / "data").exists()


def test_publish_refuses_what_it_cannot_vouch_for(tx: Any, vault_world: Settings) -> None:
    settings = vault_world
    _grant(tx, "cybercrime", "convictions@1", "carl", None)
    older = _grant(tx, "cybercrime", "convictions@2026-10", "carl", None)
    with pytest.raises(Invalid, match="two versions of convictions"):
        _publish(tx, settings, "cybercrime")
    with tx() as session:
        grants.revoke_grant(session, actor="stella", grant_id=older)
    data = settings.vault_dir / "datasets/convictions/1/data.parquet"
    data.write_bytes(data.read_bytes() + b"x")
    with pytest.raises(Invalid, match="changed after it was registered"):
        _publish(tx, settings, "cybercrime")
    assert not (settings.projects_dir / "cybercrime" / "data").exists()
    with pytest.raises(NotFound, match="unknown project"):
        _publish(tx, settings, "nowhere")


def _grant_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Grant)) or 0)


def test_grant_rules_are_checked_when_proposed_and_applied_when_published(
    tx: Any, vault_world: Settings
) -> None:
    settings = vault_world
    with tx() as session:
        events_before, grants_before = len(_actions(session)), _grant_count(session)
    for rules, columns, problem, fix in (
        ({"drop": ["sentence"]}, None, "does not have", "Its columns are: conviction_id"),
        ({"coarsen": {"verdict": {"date": "month"}}}, None, "cannot coarsen column verdict", ""),
        ({"coarsen": {"fine_eur": {"bands": [1]}}}, ["verdict"], "does not include", "--columns"),
        ({"coarsen": {"case_id": {"date": "year"}}}, None, "it is an identifier", "Drop it"),
        ({"coarsen": {"fine_eur": {"bands": [5, 1]}}}, None, "strictly increasing", "bands:"),
    ):
        with pytest.raises(Invalid) as refused, tx() as session:
            grants.propose_grant(
                session,
                proposer="stella",
                project="cybercrime",
                dataset="convictions@1",
                columns=columns,
                rules=rules,
            )
        assert problem in refused.value.problem and refused.value.fix is not None
        assert fix in refused.value.fix
    with tx() as session:
        assert (len(_actions(session)), _grant_count(session)) == (events_before, grants_before)

    rules = {"drop": ["fine_eur"], "coarsen": {"judgment_date": {"date": "year"}}}
    with tx() as session:
        grant = grants.propose_grant(
            session, proposer="stella", project="cybercrime", dataset="convictions@1", rules=rules
        )
        grants.approve_grant(session, approver="carl", grant_id=grant.id)
        proposed = json.loads(list(audit.events(session, action_prefix="grant.propose"))[-1].detail)
        assert proposed["column_rules"] == grant.column_rules == rules
    outcome = _publish(tx, settings, "cybercrime")
    view = pq.read_table(outcome.data_dir / "convictions.parquet")
    assert "fine_eur" not in view.column_names
    assert {type(y) for y in view["judgment_date"].to_pylist()} == {int}
    entry = outcome.datasets[0]
    assert entry["column_rules"] == rules
    assert entry["record_key_columns"] == ["conviction_id", "case_id"]
    with tx() as session:
        detail = json.loads(list(audit.events(session, action_prefix="data.publish"))[-1].detail)
        assert detail["datasets"][0]["column_rules"] == rules


def test_publish_refuses_stored_rules_that_do_not_fit_and_keeps_the_view(
    tx: Any, vault_world: Settings
) -> None:
    """Rules are checked against the file too: a rule the registry should have refused (a
    codebook that lied, a row edited by hand) stops the publication with a fix."""
    settings = vault_world
    grant_id = _grant(tx, "cybercrime", "convictions@1", "carl", None)
    first = _publish(tx, settings, "cybercrime")
    publication = first.data_dir.resolve()
    with tx() as session:
        grants.get_grant(session, grant_id).column_rules = {
            "coarsen": {"verdict": {"bands": [1, 2]}}
        }
    with pytest.raises(Invalid) as refused:
        _publish(tx, settings, "cybercrime")
    assert "cannot coarsen column verdict (bands need numbers" in refused.value.problem
    assert refused.value.fix is not None and "propose it again" in refused.value.fix
    assert first.data_dir.resolve() == publication
    assert sorted(p.name for p in publication.parent.iterdir()) == [publication.name]
    with tx() as session:
        assert _actions(session).count("data.publish") == 1


def test_close_withdraws_destroys_the_key_and_can_be_completed(
    tx: Any, vault_world: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = vault_world
    _grant(tx, "cybercrime", "convictions@1", "carl", None)
    _publish(tx, settings, "cybercrime")
    # Interrupted after the registry commit: the view and the key are still there.
    monkeypatch.setattr(service, "withdraw", _crash)
    with pytest.raises(OSError, match="disk"):
        service.close_project(tx, settings, "cybercrime", actor="adam")
    monkeypatch.undo()
    with tx() as session:
        assert projects.get_project(session, "cybercrime").status == ProjectStatus.closed
        assert not projects.get_project(session, "cybercrime").is_active()
    assert (settings.projects_dir / "cybercrime" / "data").exists()
    with pytest.raises(Invalid, match="closed"):
        _publish(tx, settings, "cybercrime")

    outcome = service.close_project(tx, settings, "cybercrime", actor="adam")
    assert outcome.already_closed and outcome.withdrawn == ["convictions"] and outcome.key_destroyed
    assert not (settings.projects_dir / "cybercrime" / "data").exists()
    with pytest.raises(ProjectKeyDestroyedError):
        service.keystore(settings).project_key("cybercrime")
    again = service.close_project(tx, settings, "cybercrime", actor="adam")
    assert (again.withdrawn, again.key_destroyed) == ([], False)
    with tx() as session:
        closing = [a for a in _actions(session) if a.startswith("project.close")]
        assert closing == ["project.close", "project.close.completed"]
        assert audit.verify(session, settings.audit_anchor).ok
        assert session.scalar(select(func.count()).select_from(AuditEvent)) > 0


def _crash(project_dir: Path) -> list[str]:
    raise OSError("disk unavailable")
