"""Outputs of the session: the safe result with its record, listing and saving them."""

from __future__ import annotations

import hashlib
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from trenv.disclosure.record import OutputRecord
from trenv.lab import dp, session

_OUTPUTS: list[Output] = []


@dataclass(eq=False)  # outputs are compared by identity, not by content
class Output:
    """A safe result plus its output record. ``result`` is what may be exported."""

    result: Any  # pd.DataFrame (tables, model summaries) or a matplotlib Figure
    record: OutputRecord
    table: pd.DataFrame | None = None  # the checked (safe) counts behind a figure
    flags: pd.DataFrame | None = field(default=None, repr=False)
    # A figure drawn from a safe table ``result`` (tre.kaplan_meier); saved beside its CSV.
    figure: Any = field(default=None, repr=False)
    # Rows of a float ``result`` that hold whole numbers (a describe's counts): shown and
    # saved as integers, like the Int64 columns of a count table.
    whole_rows: tuple[Any, ...] = ()

    @property
    def status(self) -> str:
        return self.record.status

    def _repr_html_(self) -> str:
        head = (
            f"<p><b>trenv {self.record.kind}</b>: {html.escape(self.record.statistic)} — "
            f"status <b>{self.record.status}</b> under policy "
            f"{html.escape(self.record.policy)} v{html.escape(self.record.policy_version)}</p>"
        )
        body = ""
        frame = self.result if isinstance(self.result, pd.DataFrame) else self.table
        if frame is not None:
            styled = styler(frame, self.whole_rows if frame is self.result else ())
            flags = self.flags
            if flags is not None and flags.shape == frame.shape:
                # Flagged cells get a red background and their rule ids as a tooltip.
                styled = styled.apply(
                    lambda _: flags.map(
                        lambda f: "background-color: #f8d0d0" if f else ""
                    ).to_numpy(),
                    axis=None,
                ).set_tooltips(flags)
            body = styled.to_html()
        rules = "".join(
            f"<li>{html.escape(v.rule_id)}: {v.status} ({v.flagged_cells} cells)"
            f"{_detail(v.detail)}</li>"
            for v in self.record.rules
        )
        return f"{head}{body}<ul>{rules}</ul>"

    def __repr__(self) -> str:
        return f"<trenv Output {self.record.kind} {self.record.statistic} {self.record.status}>"


DETAIL_CHARS = 600  # of a verdict's explanation shown under the table


def _detail(text: str) -> str:
    if not text:
        return ""
    cut = text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS] + " …"
    return f"<br><small>{html.escape(cut)}</small>"


def _whole(value: Any) -> str:
    return "" if pd.isna(value) else f"{value:.0f}"


def styler(frame: pd.DataFrame, whole_rows: tuple[Any, ...] = ()) -> Any:
    """How an output's table is shown in the notebook: integer columns (counts) as
    integers, suppressed cells empty, labels and values HTML-escaped (category labels come
    from the data)."""
    styled = (
        frame.style.format(na_rep="", escape="html")
        .format_index(escape="html", axis=0)
        .format_index(escape="html", axis=1)
    )
    rows = [r for r in whole_rows if r in frame.index]
    if rows:
        styled = styled.format(_whole, subset=pd.IndexSlice[rows, :])
    return styled


def csv_bytes(frame: pd.DataFrame, whole_rows: tuple[Any, ...] = ()) -> bytes:
    """The table as ``tre.save`` writes it: integer columns are Int64 already (49, not
    49.0; a suppressed cell empty), and ``whole_rows`` of a float table are written as
    integers too."""
    rows = [r for r in whole_rows if r in frame.index]
    if rows:
        frame = frame.astype(object)
        for r in rows:
            frame.loc[r] = [None if pd.isna(v) else int(v) for v in frame.loc[r]]
    return frame.to_csv().encode("utf-8")


def register(output: Output) -> Output:
    _OUTPUTS.append(output)
    return output


def outputs() -> list[Output]:
    """The outputs produced in this session, oldest first."""
    return list(_OUTPUTS)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save(output: Output | dp.DPOutput, name: str) -> dict[str, Path]:
    """Write the safe result and ``<name>.record.json`` into the workspace's outputs/ folder.

    Refuses names with path separators and never overwrites an existing file: a file the
    airlock may already be reviewing must not change under the checkers.
    """
    if isinstance(output, dp.DPOutput):  # a DP release is saved with its ledger sidecar
        return dp.save(output, name)
    if not isinstance(output, Output):
        raise TypeError("save() takes an output returned by a trenv.lab function")
    if not name or "/" in name or "\\" in name or name in {".", ".."} or name.startswith("."):
        raise ValueError(f"output name {name!r} must be a plain file name without '/' or '\\'")
    folder = session.workspace() / "outputs"
    folder.mkdir(parents=True, exist_ok=True)
    payloads: dict[str, bytes] = {}
    if isinstance(output.result, pd.DataFrame):
        payloads[f"{name}.csv"] = csv_bytes(output.result, output.whole_rows)
        if output.figure is not None:
            buf = io.BytesIO()
            output.figure.savefig(buf, format="png")
            payloads[f"{name}.png"] = buf.getvalue()
    else:
        buf = io.BytesIO()
        output.result.savefig(buf, format="png")
        payloads[f"{name}.png"] = buf.getvalue()
        if output.table is not None:
            payloads[f"{name}.csv"] = csv_bytes(output.table)
    record_name = f"{name}.record.json"
    targets = [folder / n for n in [*payloads, record_name]]
    existing = [str(p) for p in targets if p.exists()]
    if existing:
        raise FileExistsError(
            f"{existing} already exist; choose another name (outputs are never overwritten)"
        )
    record = output.record.model_copy(
        update={"files": {n: _sha256(b) for n, b in payloads.items()}}
    )
    written: dict[str, Path] = {}
    for file_name, data in payloads.items():
        path = folder / file_name
        with path.open("xb") as fh:  # "x": fail rather than overwrite, even in a race
            fh.write(data)
        written[file_name] = path
    rec_path = folder / record_name
    with rec_path.open("x", encoding="utf-8") as fh:
        json.dump(record.model_dump(mode="json"), fh, indent=1)
    written[record_name] = rec_path
    output.record = record
    return written
