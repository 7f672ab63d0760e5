"""Notebooks on their way to the browser, as pure functions: outputs above the caps are
withheld with a marker, images kept and counted, cells that hold data refuse the read, and a
save of the truncated notebook puts the real outputs back."""

from __future__ import annotations

import base64
import io
import json

import matplotlib
import nbformat
import numpy as np
import pandas as pd
import pytest

from trenv.disclosure.policy import EgressSetting
from trenv.judge.files import FileLimits
from trenv.lab.server.decisions import Refusal
from trenv.lab.server.notebooks import (
    MARKER_KEY,
    as_written,
    is_marker,
    new_bytes,
    output_digest,
    restore_withheld,
    truncate_notebook,
)
from trenv.lab.server.output_judge import OutputLimits
from trenv.lab.server.reads import judge_file_read, judge_notebook

matplotlib.use("Agg")
import matplotlib.pyplot as plt

LIMITS = OutputLimits.from_setting(EgressSetting())
FILES = FileLimits()


def frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, rows),
            "region": rng.choice(["noord", "zuid", "oost"], rows),
            "offence": rng.choice(["theft", "fraud"], rows),
        }
    )


def stream(text: str) -> dict:
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def figure_png() -> str:
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.bar(["a", "b"], [3, 4])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def notebook(*cells: list[dict]) -> dict:
    nb = nbformat.v4.new_notebook()
    for number, outputs in enumerate(cells, start=1):
        cell = nbformat.v4.new_code_cell(f"cell_{number}()", execution_count=number)
        cell.outputs = outputs
        nb.cells.append(cell)
    return as_written(nb)  # as the contents manager reads it


def shown_text(nb: dict) -> str:
    return json.dumps(nb)


def test_a_300_row_output_is_withheld_with_a_marker_and_the_rest_kept() -> None:
    dump = frame(300).to_csv()
    head = frame(300).head().to_string()
    nb = notebook([stream(head)], [stream(dump)], [stream("done\n")])
    result = truncate_notebook(nb, LIMITS)
    outputs = [c["outputs"] for c in result.notebook["cells"]]
    assert outputs[0][0]["text"] == head and outputs[2][0]["text"] == "done\n"
    marker = outputs[1][0]
    assert is_marker(marker) and len(outputs[1]) == 1
    text = marker["data"]["text/plain"]
    assert "withheld" in text and "301 rows" in text and "airlock" in text
    assert marker["metadata"][MARKER_KEY] == {
        "outputs": [output_digest(nb["cells"][1]["outputs"][0])],
        "rule": "table-rows",
    }
    assert "fraud" not in shown_text(result.notebook["cells"][1])
    assert [(w.cell, w.rule, w.outputs) for w in result.withheld] == [(1, "table-rows", 1)]
    assert result.notebook["metadata"][MARKER_KEY]["outputs"] == 1
    # The notebook passed in (the contents manager's model) is not changed.
    assert nb["cells"][1]["outputs"][0]["text"] == dump


@pytest.mark.parametrize(
    "output",
    [
        nbformat.v4.new_output(
            "display_data", data={"text/html": frame(300).to_html(), "text/plain": "frame"}
        ),
        nbformat.v4.new_output("execute_result", data={"text/plain": "x" * 70_000}),
        stream(base64.b64encode(b"\x00PAR1" * 400).decode()),
        nbformat.v4.new_output(
            "error", ename="E", evalue="", traceback=[f"{i},{i * 2},{i * 3}" for i in range(300)]
        ),
        # Data in an output's metadata is sent too.
        nbformat.v4.new_output(
            "display_data", data={"text/plain": "ok"}, metadata={"rows": frame(300).to_csv()}
        ),
    ],
    ids=["html-table", "size", "base64", "traceback", "metadata"],
)
def test_every_kind_of_output_is_judged(output: dict) -> None:
    result = truncate_notebook(notebook([output]), LIMITS)
    assert is_marker(result.notebook["cells"][0]["outputs"][0]), output["output_type"]


def test_many_small_outputs_add_up_against_the_notebook_total() -> None:
    rows = frame(7000).to_csv(index=False).splitlines()
    # One row per output, over many cells: each output alone is harmless.
    cells = [[stream(line + "\n") for line in rows[i : i + 100]] for i in range(0, 1000, 100)]
    result = truncate_notebook(notebook(*cells), LIMITS)
    shown = [o["text"] for c in result.notebook["cells"] for o in c["outputs"] if not is_marker(o)]
    assert len(shown) == LIMITS.cell_max_table_rows
    withheld = [o for c in result.notebook["cells"] for o in c["outputs"] if is_marker(o)]
    # Consecutive withheld outputs of a cell share one marker.
    assert len(withheld) == len(cells)  # the first cell shows some rows, then a marker
    assert (
        sum(len(m["metadata"][MARKER_KEY]["outputs"]) for m in withheld)
        == 1000 - LIMITS.cell_max_table_rows
    )
    assert {w.rule for w in result.withheld} == {"notebook-total"}


def test_pseudonyms_add_up_over_outputs() -> None:
    people = [f"{i:032x}" for i in range(1, 200)]
    cells = [[stream("\n".join(people[i : i + 20]) + "\n")] for i in range(0, 200, 20)]
    result = truncate_notebook(notebook(*cells), LIMITS)
    shown = shown_text(result.notebook)
    assert sum(p in shown for p in people) <= LIMITS.output.max_pseudonyms


def test_a_made_up_marker_is_judged_like_any_output() -> None:
    fake = {
        "output_type": "display_data",
        "data": {"text/plain": frame(300).to_csv()},
        "metadata": {MARKER_KEY: {"outputs": [], "rule": "x"}},
    }
    result = truncate_notebook(notebook([fake]), LIMITS)
    assert "fraud" not in shown_text(result.notebook)


def test_images_are_kept_and_counted() -> None:
    png = figure_png()
    figure = nbformat.v4.new_output(
        "display_data", data={"image/png": png, "text/plain": "<Figure>"}
    )
    result = truncate_notebook(notebook([figure, figure]), LIMITS)
    assert result.images == 2 and result.image_chars == 2 * len(png)
    assert result.notebook["cells"][0]["outputs"][0]["data"]["image/png"] == png
    assert not result.withheld
    # Past the meter's image level they are withheld too, with the meter's message.
    stopped = truncate_notebook(notebook([figure]), LIMITS, images_refusal="hour used up.")
    marker = stopped.notebook["cells"][0]["outputs"][0]
    assert is_marker(marker) and "hour used up" in marker["data"]["text/plain"]
    assert stopped.images == 0


def test_ordinary_notebooks_pass_unchanged() -> None:
    table = frame(300).groupby("region").age.agg(["count", "mean"]).round(1)
    nb = notebook(
        [stream(frame(300).head(10).to_string())],
        [nbformat.v4.new_output("execute_result", data={"text/html": table.to_html(),
                                                         "text/plain": table.to_string()})],
    )  # fmt: skip
    result = truncate_notebook(nb, LIMITS)
    assert result.notebook == nb and not result.withheld


def test_a_save_of_the_truncated_notebook_puts_the_outputs_back() -> None:
    dump = frame(300).to_csv()
    on_disk = notebook([stream("head\n")], [stream(dump), stream("after\n")])
    shown = truncate_notebook(on_disk, LIMITS).notebook
    # The researcher edits a cell and adds one; the browser saves what it has.
    shown["cells"][0]["source"] = "cell_1(edited)"
    shown["cells"].append(nbformat.v4.new_markdown_cell("# conclusions"))
    restored = restore_withheld(shown, on_disk)
    assert restored.restored == 1 and restored.unresolved == 0
    cells = restored.notebook["cells"]
    assert cells[1]["outputs"] == on_disk["cells"][1]["outputs"]
    assert cells[0]["source"] == "cell_1(edited)" and cells[2]["source"] == "# conclusions"
    assert MARKER_KEY not in restored.notebook["metadata"]
    # Only what is new counts against the day's uploads: two small cells, not the dump.
    added = new_bytes(as_written(restored.notebook), on_disk)
    assert 0 < added < 1000
    assert new_bytes(on_disk, on_disk) == 0  # an autosave of an unchanged notebook


def test_markers_whose_outputs_are_gone_stay_markers() -> None:
    on_disk = notebook([stream(frame(300).to_csv())])
    shown = truncate_notebook(on_disk, LIMITS).notebook
    changed = notebook([stream("rerun\n")])  # the file was rewritten meanwhile
    restored = restore_withheld(shown, changed)
    assert restored.unresolved == 1 and restored.restored == 0
    assert is_marker(restored.notebook["cells"][0]["outputs"][0])
    assert restore_withheld(shown, None).unresolved == 1  # saved under a new name


def test_cells_that_hold_data_refuse_the_read() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(frame(300).to_csv()))
    judged = judge_notebook("a.ipynb", as_written(nb), FILES, LIMITS, None)
    assert isinstance(judged, Refusal) and judged.reason == "data-read"
    assert "cells" in judged.message and "tabular data" in judged.message


def test_a_notebook_read_as_a_file_is_refused_when_outputs_would_be_withheld() -> None:
    dumped = nbformat.writes(nbformat.from_dict(notebook([stream(frame(300).to_csv())])))
    judged = judge_file_read("a.ipynb", dumped.encode(), FILES, LIMITS)
    assert isinstance(judged, Refusal) and "as a notebook" in judged.message
    plain = nbformat.writes(nbformat.from_dict(notebook([stream("hello\n")])))
    verdict = judge_file_read("b.ipynb", plain.encode(), FILES, LIMITS)
    assert not isinstance(verdict, Refusal) and verdict.kind == "notebook"
