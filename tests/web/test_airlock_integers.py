"""Counts stay integers from tre.save to the released bundle: the checker's preview and the
released files show 30, not 30.0."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator

import pandas as pd
import pytest

import trenv.lab as tre
from tests.web.airlock_world import Tx, World, auth, build_world
from trenv.airlock.bundle import verify_bundle
from trenv.config import Settings

P = "/services/trenv/"
HTML = {"accept": "text/html"}


@pytest.fixture
def w(settings: Settings, tx: Tx, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from build_world(settings, tx, monkeypatch)


def _saved_counts(w: World, monkeypatch: pytest.MonkeyPatch) -> bytes:
    # north: 30 women, 25 men; south: 20 women and 3 men (suppressed).
    cells = {("north", "f"): 30, ("north", "m"): 25, ("south", "f"): 20, ("south", "m"): 3}
    rows = [{"region": r, "sex": s} for (r, s), n in cells.items() for _ in range(n)]
    df = pd.DataFrame(rows).assign(pid=lambda d: [f"p{i:05d}" for i in range(len(d))])
    monkeypatch.setenv("TRENV_WORKSPACE", str(w.workspace()))
    monkeypatch.setenv("TRENV_POLICY", "trenv-default")
    tre.save(tre.crosstab(df.region, df.sex, contributor=df.pid), "counts")
    data = (w.workspace() / "outputs" / "counts.csv").read_bytes()
    assert data == b"region,f,m\nnorth,30,25\nsouth,20,\n"
    return data


def test_preview_and_bundle_show_counts_as_integers(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _saved_counts(w, monkeypatch)
    req = w.submitted(("outputs/counts.csv", data))
    shown = w.outside.get(P + f"requests/{req['id']}", headers={**HTML, **auth("t-chris")})
    assert shown.status_code == 200
    table = shown.text[shown.text.index("preview-table") :]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", table[: table.index("</table>")])
    assert cells[:6] == ["north", "30", "25", "south", "20", ""], cells
    assert not any(c.endswith(".0") for c in cells)
    decided = w.approve_all(req, "chris", "kim")
    assert decided["state"] == "approved", decided
    assert w.call("POST", f"/requests/{req['id']}/release", "t-rita").status_code == 200
    got = w.call("GET", f"/requests/{req['id']}/download", "t-rita")
    assert verify_bundle(got.content) == []
    with zipfile.ZipFile(io.BytesIO(got.content)) as zf:
        assert zf.read("files/outputs/counts.csv") == data
        raw = zf.read("disclosure-record.json").decode()
    record = json.loads(raw)
    released = next(f for f in record["files"] if f["path"] == "outputs/counts.csv")
    published = released["output_record"]["cells"]["published"]
    assert published == [30, 25, 20, None]
    # As JSON numbers without a fraction (the per-cell sums behind the rules stay floats).
    for key in ("published", "value"):
        assert re.search(rf'"{key}": \[\s*30,\s*25,\s*20,\s*null\s*\]', raw), key
