"""``tre.dp`` in a notebook, against the real API app (TestClient standing in for HTTP)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import trenv.lab as tre
from tests.web.conftest import Web
from trenv.lab import api, dp


@pytest.fixture
def lab(web: Web, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    workspace = tmp_path / "work"
    workspace.mkdir()
    monkeypatch.setenv("TRENV_API_URL", "http://testserver/services/trenv/api")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "t-rita")
    monkeypatch.setenv("TRENV_WORKSPACE", str(workspace))

    # The lab's one client sends through the app (TestClient standing in for HTTP).
    monkeypatch.setattr(api, "transport", httpx.MockTransport(web.client.send))
    return workspace


def test_count_renders_and_saves_with_the_ledger_sidecar(lab: Path, web: Web) -> None:
    out = tre.dp.count("convictions", by="offence", rho=0.1, max_contributions=3)
    assert list(out.frame()["offence"]) == ["theft", "assault", "fraud"]
    page = out._repr_html_()
    assert "spent rho 0.1" in page and "budget left 0.9 of 1" in page and "± 95%" in page
    files = tre.save(out, "by_offence")
    csv = (lab / "outputs" / "by_offence.csv").read_bytes()
    sidecar = json.loads((lab / "outputs" / "by_offence.dp.json").read_text())
    assert set(files) == {"by_offence.csv", "by_offence.dp.json"}
    assert sidecar == {
        "schema_version": "trenv.dp-output/1",
        "spend_id": out.spend_id,
        "project": "reoffending",
        "dataset": "convictions",
        "plan_hash": out.result["plan_hash"],
        "rho": 0.1,
        "release": out.result["release"],
        "files": {"by_offence.csv": hashlib.sha256(csv).hexdigest()},
    }
    with pytest.raises(FileExistsError):
        tre.save(out, "by_offence")


def test_other_statistics_and_budget(lab: Path) -> None:
    mean = tre.dp.mean("convictions", "sentence_days", (1, 3650), rho=0.1)
    assert "noisy sum" in mean._repr_html_()
    median = tre.dp.quantile("convictions", "sentence_days", 0.5, (1, 3650), rho=0.1)
    assert 1 <= median.value <= 3650
    hist = tre.dp.histogram("convictions", "sentence_days", [0, 100, 200, 400], rho=0.1)
    assert len(hist.frame()) == 3
    total = tre.dp.sum("convictions", "sentence_days", (0, 400), by=["offence"], rho=0.1)
    assert len(total.frame()) == 3
    budget = tre.dp.budget()
    assert budget.remaining("convictions") == pytest.approx(0.6)
    assert "Privacy budget of reoffending" in budget._repr_html_()


def test_refusals_are_readable(lab: Path) -> None:
    with pytest.raises(dp.DPError, match="not public") as info:
        tre.dp.count("convictions", by="year", rho=0.1)
    assert info.value.status == 400
    with pytest.raises(dp.DPError, match=r"at most 1\.") as info:
        tre.dp.count("convictions", rho=2.0)  # above the policy's limit for one query
    assert info.value.status == 400 and "several queries" in str(info.value.fix)
    tre.dp.count("convictions", rho=0.6)
    with pytest.raises(dp.DPError, match=r"only 0\.4 of the 1\.0") as info:
        tre.dp.count("convictions", rho=0.5)
    assert info.value.status == 409


@pytest.mark.parametrize("rho", ["0.01", True])
def test_a_rho_that_is_not_a_number_is_refused(lab: Path, rho: object) -> None:
    with pytest.raises(dp.DPError, match="rho") as info:
        tre.dp.count("convictions", rho=rho)  # type: ignore[arg-type]
    assert info.value.status == 400
    assert tre.dp.budget().remaining("convictions") == pytest.approx(1.0)  # nothing charged


def test_the_lab_client_never_imports_server_packages() -> None:
    code = (
        "import sys, trenv.lab as tre; tre.dp.count; "
        "bad = [m for m in sys.modules if m.split('.')[0] == 'sqlalchemy' or "
        "m.startswith(('trenv.store', 'trenv.hub', 'trenv.web', 'trenv.privacy', "
        "'trenv.registry'))]; print(bad); assert not bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
