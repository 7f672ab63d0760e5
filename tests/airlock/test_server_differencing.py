"""The server's own differencing check: tables that are safe alone but not together.

The notebook's differencing verdict only covers what was saved in that workspace; the
server combines a new table with every table the project released and with the other
tables of the same request. Here each table is saved in a workspace of its own (so the
notebook saw nothing to combine) and then put side by side in one request.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import trenv.lab as tre
from tests.web.airlock_world import Tx, World, build_world
from trenv.config import Settings


@pytest.fixture
def w(settings: Settings, tx: Tx, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from build_world(settings, tx, monkeypatch)


def people() -> pd.DataFrame:
    """40 people per (region, offence) cell, except 3 in (east, fraud)."""
    rows = []
    pid = 0
    for region in ("north", "south", "east"):
        for offence in ("theft", "fraud"):
            for _ in range(3 if (region, offence) == ("east", "fraud") else 40):
                rows.append({"person": f"p{pid}", "region": region, "offence": offence})
                pid += 1
    return pd.DataFrame(rows)


def save_alone(tmp: Path, monkeypatch: pytest.MonkeyPatch, output: tre.Output, name: str) -> Path:
    """Save ``output`` in a fresh workspace of its own and return its outputs folder."""
    workspace = tmp / name
    workspace.mkdir()
    monkeypatch.setenv("TRENV_WORKSPACE", str(workspace))
    tre.save(output, name)
    return workspace / "outputs"


def test_a_one_way_table_that_reveals_a_suppressed_cell_fails_on_the_server(
    w: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    df = people()
    two_way = tre.crosstab(df.region, df.offence, contributor=df.person, policy="trenv-default")
    assert pd.isna(two_way.result.loc["east", "fraud"])  # suppressed
    one_way = tre.pivot_table(
        df, index="region", aggfunc="count", contributor="person", policy="trenv-default"
    )
    assert one_way.status == "pass"
    outputs = w.workspace() / "outputs"
    outputs.mkdir(parents=True)
    for folder in (save_alone(tmp_path, monkeypatch, two_way, "by_region_offence"),
                   save_alone(tmp_path, monkeypatch, one_way, "by_region")):  # fmt: skip
        for path in folder.iterdir():
            shutil.copy(path, outputs / path.name)
    reply = w.create(
        files=[
            {"path": "outputs/by_region_offence.csv", "justification": "table 1"},
            {"path": "outputs/by_region.csv", "justification": "table 2"},
        ],
        submit=True,
    )
    assert reply.status_code == 201, reply.text
    files = {f["path"]: f["check"] for f in reply.json()["file_list"]}
    first = {f["rule_id"]: f for f in files["outputs/by_region_offence.csv"]["findings"]}
    assert first["differencing-server"]["status"] == "pass"
    second = files["outputs/by_region.csv"]
    server = {f["rule_id"]: f for f in second["findings"]}["differencing-server"]
    assert server["status"] == "fail" and "east" in server["message"]
    assert second["status"] == "fail"
