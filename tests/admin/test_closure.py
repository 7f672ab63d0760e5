"""Closing a project: servers stopped, workspaces archived and removed, data and key gone,
every step in a chain that still verifies; the airlock's released outputs are untouched."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.admin.world import Tx, build
from trenv import audit
from trenv.admin.closure import close_project
from trenv.admin.servers import NoHub, RunningServer, StaticServers
from trenv.config import Settings
from trenv.errors import Forbidden
from trenv.hub.launch import plan_launch
from trenv.registry import projects
from trenv.store.models import ProjectStatus
from trenv.vault import service as vault
from trenv.vault.pseudonym import ProjectKeyDestroyedError


def _server(user: str, project: str) -> RunningServer:
    return RunningServer(user, project, ready=True, pending="", started=None, last_activity=None)


def _workspaces(settings: Settings) -> Path:
    assert settings.workspaces_dir is not None
    root = settings.workspaces_dir / "reoffending"
    for user, text in (("rita", "model <- glm(...)"), ("nora", "notes")):
        (root / user / "outputs").mkdir(parents=True)
        (root / user / "outputs" / "work.txt").write_text(text)
    return root


def test_closure_stops_archives_and_destroys(tx: Tx, settings: Settings, tmp_path: Path) -> None:
    build(tx, settings, tmp_path)
    root = _workspaces(settings)
    airlock = settings.airlock_dir / "released-sample"  # the released outputs stay
    airlock.write_text("released")
    servers = StaticServers([_server("rita", "reoffending"), _server("olga", "other")])
    outcome = close_project(tx, settings, "reoffending", actor="adam", servers=servers)

    assert servers.stopped == ["rita"]  # only the project's own servers
    assert outcome.servers == {"rita": "stopped"} and outcome.hub_problem is None
    assert not root.exists()
    assert outcome.archive is not None and outcome.archive.users == ["nora", "rita"]
    archive = outcome.archive.path
    assert archive.parent == settings.retention_dir / "reoffending"
    assert archive.name.endswith(".tar.gz") and oct(archive.stat().st_mode)[-3:] == "600"
    with tarfile.open(archive) as tar:
        assert tar.extractfile("reoffending/rita/outputs/work.txt").read() == b"model <- glm(...)"
    assert not (settings.projects_dir / "reoffending" / "data").exists()
    with pytest.raises(ProjectKeyDestroyedError):
        vault.keystore(settings).project_key("reoffending")
    assert airlock.read_text() == "released"

    with tx() as session:
        assert projects.get_project(session, "reoffending").status == ProjectStatus.closed
        with pytest.raises(Forbidden, match="not active"):
            plan_launch(session, settings, username="rita", project="reoffending")
        steps = [e for e in audit.events(session, action_prefix="project.close")]
        assert [e.action for e in steps] == [
            "project.close", "project.close.servers", "project.close.workspaces",
        ]  # fmt: skip
        archived = json.loads(steps[-1].detail)
        assert archived["sha256"] == outcome.archive.sha256 and archived["removed"]
        assert audit.verify(session, settings.audit_anchor).ok


def test_workspaces_stay_while_a_server_may_run(tx: Tx, settings: Settings, tmp_path: Path) -> None:
    build(tx, settings, tmp_path)
    root = _workspaces(settings)
    unreachable = NoHub("the hub API did not answer.")
    outcome = close_project(tx, settings, "reoffending", actor="adam", servers=unreachable)
    assert outcome.workspaces_kept and outcome.archive is None and root.is_dir()
    assert not (settings.projects_dir / "reoffending" / "data").exists()  # data went anyway
    # Run again once the hub answers: the closure finishes.
    again = close_project(tx, settings, "reoffending", actor="adam", servers=StaticServers())
    assert again.already_closed and again.archive is not None and not root.exists()
    with tx() as session:
        details = [
            json.loads(e.detail) for e in audit.events(session, action_prefix="project.close.")
        ]
        assert details[0]["hub_problem"] == "the hub API did not answer."
        assert audit.verify(session, settings.audit_anchor).ok


def test_a_stop_still_under_way_is_waited_for(tx: Tx, settings: Settings, tmp_path: Path) -> None:
    build(tx, settings, tmp_path)
    _workspaces(settings)

    class Slow(StaticServers):
        def stop(self, username: str) -> str:
            self.stopped.append(username)
            return "stopping"  # the hub answered 202; the server never goes away here

    servers = Slow([_server("rita", "reoffending")])
    outcome = close_project(
        tx, settings, "reoffending", actor="adam", servers=servers, stop_wait=0.2
    )
    assert outcome.servers == {"rita": "failed"} and outcome.workspaces_kept
