"""The notebook asks the server to combine a new table with the project's tables (issue 16).

Before, ``tre.*`` combined a table only with the tables saved in the researcher's own
workspace: a colleague's released or requested table was first met at review time. Now the
notebook sends the table's record to ``POST /api/differencing/check`` and learns the
airlock's verdict at once. Everything goes through the real app, with the notebook server's
own token, as from a container.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pandas as pd
import pytest

import trenv.lab as tre
from tests.web.airlock_world import API, Tx, World, auth, build_world
from trenv.config import Settings
from trenv.lab import api

CHECK = API.removesuffix("/airlock") + "/differencing/check"


@pytest.fixture
def w(settings: Settings, tx: Tx, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for world in build_world(settings, tx, monkeypatch):
        monkeypatch.setenv("TRENV_API_URL", "http://testserver" + API.removesuffix("/airlock"))
        monkeypatch.setenv("TRENV_POLICY", "trenv-default")
        monkeypatch.setattr(api, "transport", httpx.MockTransport(world.inside.send))
        yield world


def as_user(w: World, monkeypatch: pytest.MonkeyPatch, name: str, project: str) -> None:
    """The notebook session of ``name``'s server on ``project``."""
    workspace = w.workspace(name, project)
    workspace.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", f"srv-{name}")
    monkeypatch.setenv("TRENV_WORKSPACE", str(workspace))


@pytest.fixture
def sentences() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    person = rng.integers(0, 900, 2400)
    return pd.DataFrame(
        {
            "person": person,
            "court": np.array(["Amsterdam", "Den Haag", "Zwolle"])[person % 3],
            "verdict": rng.choice(["guilty", "acquitted"], len(person)),
            "months": rng.gamma(2.0, 6.0, len(person)).round(1) + 1,
        }
    )


def months_by_court(frame: pd.DataFrame) -> tre.Output:
    return tre.pivot_table(
        frame, values="months", index="court", columns="verdict", aggfunc="sum",
        contributor="person",
    )  # fmt: skip


def verdicts(output: tre.Output) -> dict[str, tuple[str, str]]:
    return {v.rule_id: (v.status, v.detail) for v in output.record.rules}


def nora_requests_the_table_of_everyone(
    w: World, monkeypatch: pytest.MonkeyPatch, sentences: pd.DataFrame
) -> int:
    as_user(w, monkeypatch, "nora", "reoffending")
    tre.save(months_by_court(sentences), "months")
    reply = w.create(
        "srv-nora",
        files=[{"path": "outputs/months.csv", "justification": "table 2"}],
        submit=True,
    )
    assert reply.status_code == 201, reply.text
    return int(reply.json()["id"])


def test_a_colleagues_requested_table_is_met_in_the_notebook(
    w: World, monkeypatch: pytest.MonkeyPatch, sentences: pd.DataFrame
) -> None:
    request_id = nora_requests_the_table_of_everyone(w, monkeypatch, sentences)
    # rita's workspace holds nothing: the local check alone would pass.
    as_user(w, monkeypatch, "rita", "reoffending")
    mine = months_by_court(sentences[sentences.person != 7])
    status, detail = verdicts(mine)["population-difference"]
    assert status == "fail" and mine.status == "fail"
    assert detail.startswith("project: ") and f"(request {request_id})" in detail
    assert "isolates 1 people" in detail
    # The same table of everyone meets nora's as an equal: nothing to find.
    same = months_by_court(sentences)
    assert verdicts(same)["population-difference"] == ("pass", "")
    assert verdicts(same)["differencing"] == ("pass", "")


def test_a_colleagues_table_pins_a_cell_the_new_table_suppresses(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # nora released the one-way counts by court; rita's two-way table hides a small cell
    # that the one-way count, with her published cells, gives away.
    df = pd.DataFrame(
        {
            "person": range(95),
            "court": ["Assen"] * 43 + ["Breda"] * 52,
            "verdict": ["acquitted"] * 3 + ["guilty"] * 40 + ["acquitted"] * 30 + ["guilty"] * 22,
        }
    )
    as_user(w, monkeypatch, "nora", "reoffending")
    tre.save(tre.pivot_table(df, index="court", aggfunc="count", contributor="person"), "courts")
    reply = w.create("srv-nora", files=[{"path": "outputs/courts.csv", "justification": "t"}])
    assert reply.status_code == 201, reply.text
    as_user(w, monkeypatch, "rita", "reoffending")
    two_way = tre.crosstab(df.court, df.verdict, contributor=df.person)
    status, detail = verdicts(two_way)["differencing"]
    assert status == "fail" and "project: " in detail and "Assen" in detail


def test_another_projects_tables_are_never_combined(
    w: World, monkeypatch: pytest.MonkeyPatch, sentences: pd.DataFrame
) -> None:
    nora_requests_the_table_of_everyone(w, monkeypatch, sentences)
    as_user(w, monkeypatch, "olga", "other")
    theirs = months_by_court(sentences[sentences.person != 7])
    assert verdicts(theirs)["population-difference"] == ("pass", "")


def test_without_a_running_server_the_local_check_runs_and_says_so(
    w: World, monkeypatch: pytest.MonkeyPatch, sentences: pd.DataFrame
) -> None:
    as_user(w, monkeypatch, "adam", "reoffending")  # adam's token has no running server
    tre.save(months_by_court(sentences), "everyone")
    out = months_by_court(sentences[sentences.person != 7])
    status, detail = verdicts(out)["population-difference"]
    assert status == "fail" and "saved table 1" in detail  # the local check still ran
    status, detail = verdicts(out)["differencing"]
    assert status == "pass" and "could not be consulted" in detail
    assert "no running notebook server" in detail


def test_the_route_takes_only_a_valid_record_from_a_member(w: World) -> None:
    reply = w.inside.post(CHECK, json={"record": {"kind": "table"}}, headers=auth("srv-rita"))
    assert reply.status_code == 400 and "not an output record" in reply.json()["problem"]
    reply = w.inside.post(CHECK, json={"record": {}, "extra": 1}, headers=auth("srv-rita"))
    assert reply.status_code == 400 and "extra" in reply.json()["problem"]
    # Without a running server there is no project to check against, as for DP queries.
    reply = w.inside.post(CHECK, json={"record": {}}, headers=auth("srv-adam"))
    assert reply.status_code == 403 and "no running notebook server" in reply.json()["problem"]


def test_a_browser_or_a_copied_server_token_from_outside_is_refused(
    w: World, monkeypatch: pytest.MonkeyPatch, sentences: pd.DataFrame
) -> None:
    # The findings quote other requests' cells: they go to a kernel, never to a browser.
    nora_requests_the_table_of_everyone(w, monkeypatch, sentences)
    record = months_by_court(sentences[sentences.person != 7]).record.model_dump(mode="json")
    for client, token in ((w.outside, "srv-rita"), (w.outside, "t-rita"), (w.inside, "t-rita")):
        reply = client.post(CHECK, json={"record": record}, headers=auth(token))
        assert reply.status_code == 403 and "notebook servers only" in reply.json()["problem"]
    reply = w.inside.post(CHECK, json={"record": record}, headers=auth("srv-rita"))
    assert reply.status_code == 200 and reply.json()["findings"]


def test_a_server_on_a_project_one_is_not_a_member_of_is_refused(
    w: World, monkeypatch: pytest.MonkeyPatch, sentences: pd.DataFrame
) -> None:
    nora_requests_the_table_of_everyone(w, monkeypatch, sentences)
    record = months_by_court(sentences[sentences.person != 7]).record.model_dump(mode="json")
    w.identity.servers["olga"] = "reoffending"  # olga is a member of 'other' only
    reply = w.inside.post(CHECK, json={"record": record}, headers=auth("srv-olga"))
    assert reply.status_code == 403 and "not an active member" in reply.json()["problem"]
    assert w.inside.post(CHECK, json={"record": {}}).status_code == 401
