"""``tre.request_export`` in a notebook, against the real API app (TestClient for HTTP)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pandas as pd
import pytest

import trenv.lab as tre
from tests.web.airlock_world import API, Tx, World, build_world
from trenv.config import Settings
from trenv.lab import api


@pytest.fixture
def w(settings: Settings, tx: Tx, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for world in build_world(settings, tx, monkeypatch):
        # The notebook's requests go through the app from the containers' subnet, with
        # rita's server token, exactly as tre.request_export sends them from a container.
        monkeypatch.setenv("TRENV_API_URL", "http://testserver" + API.removesuffix("/airlock"))
        monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "srv-rita")
        monkeypatch.setenv("TRENV_WORKSPACE", str(world.workspace()))
        monkeypatch.setenv("TRENV_POLICY", "trenv-default")

        monkeypatch.setattr(api, "transport", httpx.MockTransport(world.inside.send))
        yield world


def test_a_saved_table_is_requested_submitted_and_checked_by_the_server(w: World) -> None:
    people = pd.DataFrame(
        {"person": [f"p{i}" for i in range(120)], "region": ["noord", "zuid", "oost"] * 40}
    )
    tre.save(tre.bar(people.region, contributor=people.person), "regions")
    request = tre.request_export(
        "Regions", {"outputs/regions.csv": "Figure 1's counts", "outputs/regions.png": "Fig. 1"}
    )
    assert request.state == "submitted" and request.id > 0
    assert request.checks == {"outputs/regions.csv": "pass", "outputs/regions.png": "review"}
    assert request.failed == []
    page = request._repr_html_()
    assert f"Export request #{request.id}" in page and "outputs/regions.csv" in page
    assert tre.export_request(request.id).checks == request.checks


def test_a_refusal_raises_with_the_problem_and_nothing_is_created(w: World) -> None:
    with pytest.raises(tre.ExportError) as refused:
        tre.request_export("Missing", {"outputs/none.csv": "x"})
    assert refused.value.status in (400, 404) and "none.csv" in str(refused.value)
    assert w.call("GET", "/requests", "srv-rita", inside=True).json() == []
    with pytest.raises(ValueError):
        tre.request_export("Nothing", {})
