"""Differentially private statistics from a notebook: ``tre.dp.count(...)`` and friends.

The query runs on the server (trenv web API at ``TRENV_API_URL``, authenticated with the
server's own ``JUPYTERHUB_API_TOKEN``), which checks it, charges the project's budget in its
ledger and returns the noisy release; nothing here touches the data or the budget, so
nothing here can be bypassed. Group keys come from the dataset's codebook on the server:
pass column names only. Results render with their 95% intervals and the spend, and
``tre.save(out, name)`` writes ``outputs/<name>.csv`` with ``outputs/<name>.dp.json``, the
sidecar the airlock verifies against the ledger.

This module runs in the container: it must never import trenv.store or hub-side packages.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from pydantic import BaseModel, ValidationError

from trenv.lab import session
from trenv.lab.api import UNEXPECTED, Api, ApiError, build
from trenv.wire.dp import BUDGET_PATH, QUERY_PATH, BudgetReport, DPQuery, DPResult

By = Sequence[str] | str | None  # grouping columns (keys from the codebook)
SIDECAR_SCHEMA = "trenv.dp-output/1"
TIMEOUT = 600  # seconds: a query over a large table can take a while on the server
Answer = TypeVar("Answer", bound=BaseModel)


class DPError(ApiError):
    """The server refused the query; nothing was charged unless it says so."""


def _api() -> Api:
    return Api.for_session(timeout=TIMEOUT, error=DPError, caller="tre.dp")


def _read(model: type[Answer], data: dict[str, Any]) -> Answer:
    """An accepted call's answer, read with the wire model the server answers with."""
    try:
        return model.model_validate(data)
    except ValidationError:
        raise DPError(200, UNEXPECTED) from None


@dataclass(eq=False)
class DPOutput:
    """A DP release as the server returned it (``result``), with its ledger entry."""

    result: dict[str, Any]

    @property
    def release(self) -> dict[str, Any]:
        release: dict[str, Any] = self.result["release"]
        return release

    @property
    def statistic(self) -> str:
        return str(self.release["statistic"])

    @property
    def value(self) -> Any:
        return self.release["value"]

    @property
    def spend_id(self) -> int:
        return int(self.result["spend_id"])

    def frame(self) -> pd.DataFrame:
        """The released values: one row per group (or one row), exactly as released."""
        if self.release.get("table") is not None:
            return pd.DataFrame(self.release["table"])
        return pd.DataFrame({self.statistic: [self.value]})

    def csv_bytes(self) -> bytes:
        return self.frame().to_csv(index=False).encode("utf-8")

    def _half_width(self) -> tuple[str, float | None]:
        acc = self.release.get("accuracy") or {}
        s = self.statistic
        column = {"histogram": "count", "mean": "mean"}.get(s, s)
        return column, acc.get("count" if s == "histogram" else s)

    def _repr_html_(self) -> str:
        r, res = self.release, self.result
        budget = res.get("budget") or {}
        column, half = self._half_width()
        level = round(100 * (1 - float(r.get("accuracy_alpha", 0.05))))
        head = (
            f"<p><b>trenv DP {html.escape(self.statistic)}</b> on "
            f"{html.escape(str(res['dataset']))} ({html.escape(str(res['project']))}) — "
            f"spent rho {res['rho']:g} (ε = {res['epsilon']:.3g} at δ = {res['delta']:g}); "
            f"budget left {budget.get('rho_remaining', float('nan')):g} of "
            f"{budget.get('rho_total', float('nan')):g}. Ledger entry #{res['spend_id']}.</p>"
        )
        frame = self.frame()
        if half is not None and column in frame:
            values = pd.to_numeric(frame[column], errors="coerce")
            frame[f"± {level}%"] = half
            frame["interval"] = [f"[{v - half:.4g}, {v + half:.4g}]" for v in values]
            frame["error bar"] = _bars(values, half)
            note = (
                f"<p>Intervals: the noise stays within ± {half:.4g} with probability "
                f"{level}%; they do not cover truncation or clipping bias.</p>"
            )
        else:
            note = _accuracy_note(r)
        table = frame.to_html(index=False, escape=False, float_format=lambda x: f"{x:.4g}")
        return head + table + note

    def __repr__(self) -> str:
        return (
            f"<trenv DPOutput {self.statistic} on {self.result['dataset']}: "
            f"rho {self.result['rho']:g}, spend #{self.spend_id}>"
        )


def _bars(values: pd.Series, half: float) -> list[str]:
    """An inline error bar per value on a common scale (plain HTML: no script needed)."""
    finite = values.dropna()
    if finite.empty:
        return [""] * len(values)
    lo = min(float(finite.min()) - half, 0.0)
    hi = max(float(finite.max()) + half, 0.0)
    span = (hi - lo) or 1.0
    bars = []
    for v in values:
        if pd.isna(v):
            bars.append("")
            continue
        left = 100 * (v - half - lo) / span
        width = max(100 * 2 * half / span, 0.5)
        mark = 100 * (v - lo) / span
        bars.append(
            '<div style="position:relative;width:12em;height:0.9em;background:#eef1f5">'
            f'<div style="position:absolute;left:{left:.2f}%;width:{width:.2f}%;top:35%;'
            'height:30%;background:#9fbfd8"></div>'
            f'<div style="position:absolute;left:{mark:.2f}%;width:2px;top:0;height:100%;'
            'background:#1f5f8b"></div></div>'
        )
    return bars


def _accuracy_note(release: dict[str, Any]) -> str:
    acc = release.get("accuracy") or {}
    if release["statistic"] == "mean":
        return (
            f"<p>A mean is a noisy sum over a noisy count: ± {acc.get('sum', 0):.4g} on "
            f"the sum and ± {acc.get('count', 0):.4g} on the count (95%).</p>"
        )
    if release["statistic"] == "quantile":
        return (
            f"<p>Quantiles are chosen from a grid with step "
            f"{acc.get('quantile_grid_step', 0):.4g}; their error depends on the data.</p>"
        )
    return ""


@dataclass
class DPBudget:
    """The project's budgets as the ledger holds them."""

    project: str
    budgets: list[dict[str, Any]]

    def remaining(self, dataset: str) -> float:
        for b in self.budgets:
            if b["dataset"] == dataset:
                return float(b["rho_remaining"])
        raise KeyError(f"no budget on {dataset!r}")

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(b['dataset'])}</td><td>{b['rho_total']:g}</td>"
            f"<td>{b['rho_spent']:g}</td><td><b>{b['rho_remaining']:g}</b></td></tr>"
            for b in self.budgets
        )
        return (
            f"<p><b>Privacy budget of {html.escape(self.project)}</b> (zCDP rho)</p>"
            "<table><tr><th>dataset</th><th>total</th><th>spent</th><th>left</th></tr>"
            f"{rows}</table>"
        )


def _query(dataset: str, statistic: str, rho: float, by: By, **options: Any) -> DPOutput:
    api = _api()
    group_by = [by] if isinstance(by, str) else list(by or [])
    fields = {
        "dataset": dataset,
        "statistic": statistic,
        "rho": rho,
        "group_by": group_by,
        **{k: v for k, v in options.items() if v is not None},
    }
    query = build(DPQuery, fields, DPError)  # refused as the server would: not sent
    body = query.model_dump(mode="json", exclude_none=True)
    return DPOutput(_read(DPResult, api.call("POST", QUERY_PATH, body)).model_dump())


def count(dataset: str, by: By = None, *, rho: float, max_contributions: int = 1) -> DPOutput:
    """Noisy number of rows (per group of ``by``, whose keys come from the codebook)."""
    return _query(dataset, "count", rho, by, max_contributions=max_contributions)


def sum(
    dataset: str,
    column: str,
    bounds: tuple[float, float],
    by: By = None,
    *,
    rho: float,
    max_contributions: int = 1,
) -> DPOutput:
    """Noisy sum of ``column`` clipped to ``bounds`` (take them from the codebook)."""
    return _query(
        dataset,
        "sum",
        rho,
        by,
        column=column,
        bounds=list(bounds),
        max_contributions=max_contributions,
    )


def mean(
    dataset: str,
    column: str,
    bounds: tuple[float, float],
    by: By = None,
    *,
    rho: float,
    max_contributions: int = 1,
) -> DPOutput:
    """Noisy mean of ``column`` within ``bounds`` (half of rho each to sum and count)."""
    return _query(
        dataset,
        "mean",
        rho,
        by,
        column=column,
        bounds=list(bounds),
        max_contributions=max_contributions,
    )


def quantile(
    dataset: str,
    column: str,
    alpha: float,
    bounds: tuple[float, float],
    by: By = None,
    *,
    rho: float,
    max_contributions: int = 1,
) -> DPOutput:
    """The ``alpha`` quantile of ``column`` (0.5: the median), from a grid within ``bounds``."""
    return _query(
        dataset,
        "quantile",
        rho,
        by,
        column=column,
        alpha=alpha,
        bounds=list(bounds),
        max_contributions=max_contributions,
    )


def histogram(
    dataset: str,
    column: str,
    bins: Sequence[float],
    by: By = None,
    *,
    rho: float,
    max_contributions: int = 1,
) -> DPOutput:
    """Noisy counts of ``column`` per bin ``[e_i, e_i+1)`` (the last bin closed)."""
    return _query(
        dataset,
        "histogram",
        rho,
        by,
        column=column,
        bins=list(bins),
        max_contributions=max_contributions,
    )


def budget() -> DPBudget:
    """What is left of the project's privacy budgets."""
    report = _read(BudgetReport, _api().call("GET", BUDGET_PATH))
    return DPBudget(project=report.project, budgets=report.budgets)


def sidecar(output: DPOutput, name: str, csv: bytes) -> dict[str, Any]:
    """The ``<name>.dp.json`` document (schema ``trenv.dp-output/1``)."""
    res = output.result
    return {
        "schema_version": SIDECAR_SCHEMA,
        "spend_id": int(res["spend_id"]),
        "project": str(res["project"]),
        "dataset": str(res["dataset"]),
        "plan_hash": str(res["plan_hash"]),
        "rho": float(res["rho"]),
        "release": res["release"],
        "files": {f"{name}.csv": hashlib.sha256(csv).hexdigest()},
    }


def save(output: DPOutput, name: str) -> dict[str, Path]:
    """``outputs/<name>.csv`` and ``outputs/<name>.dp.json``; never overwrites a file."""
    if not name or "/" in name or "\\" in name or name in {".", ".."} or name.startswith("."):
        raise ValueError(f"output name {name!r} must be a plain file name without '/' or '\\'")
    folder = session.workspace() / "outputs"
    folder.mkdir(parents=True, exist_ok=True)
    csv = output.csv_bytes()
    targets = {f"{name}.csv": folder / f"{name}.csv", f"{name}.dp.json": folder / f"{name}.dp.json"}
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing:
        raise FileExistsError(
            f"{existing} already exist; choose another name (outputs are never overwritten)"
        )
    with targets[f"{name}.csv"].open("xb") as fh:  # "x": fail rather than overwrite
        fh.write(csv)
    buf = io.StringIO()
    json.dump(sidecar(output, name, csv), buf, indent=1)
    with targets[f"{name}.dp.json"].open("x", encoding="utf-8") as fh:
        fh.write(buf.getvalue())
    return targets
