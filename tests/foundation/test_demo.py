from __future__ import annotations

from trenv.config import Settings
from trenv.demo.installation import PROJECT, seed
from trenv.registry import projects
from trenv.store import transaction


def test_demo_seed_is_idempotent(settings: Settings) -> None:
    with transaction(settings) as session:
        created = seed(session)
    assert f"project {PROJECT}" in created and "user chris" in created
    with transaction(settings) as session:
        assert seed(session) == []
        project = projects.get_project(session, PROJECT)
        assert [m.user.username for m in project.memberships] == ["rosa"]
        assert project.is_active()
