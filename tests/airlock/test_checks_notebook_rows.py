"""Notebook outputs that print row-level data: a listing is not a result.

Each notebook is made the way Jupyter saves one (nbformat), with outputs pandas really
produces; the check must fail a long listing whatever output type carries it and leave
ordinary outputs (a model summary, a small table, a figure) as they were.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from tests.airlock.test_checks_files import PNG_1PX, PSEUDO, by_rule, check, code, frozen, notebook
from trenv.airlock.formats.notebook import MAX_TABLE_ROWS


def microdata(rows: int, pseudonyms: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "offence": rng.choice(["theft", "fraud", "assault"], rows),
            "sex": rng.choice(["m", "f"], rows),
            "age": rng.integers(18, 80, rows),
            "sentence_days": rng.integers(0, 900, rows),
        }
    )
    if pseudonyms:
        frame.insert(0, "who", [f"{i:032x}" for i in range(rows)])
    return frame


def markdown(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def result(data: dict[str, str]) -> dict[str, Any]:
    return {"output_type": "execute_result", "data": data, "metadata": {}, "execution_count": 1}


def display(data: dict[str, str]) -> dict[str, Any]:
    return {"output_type": "display_data", "data": data, "metadata": {}}


def stream(text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stdout", "text": text}


def rows_finding(outputs: list[dict[str, Any]]) -> Any:
    c = check(frozen("n.ipynb", notebook(code(*outputs))))
    return c, by_rule(c, "printed-table")


@pytest.mark.parametrize(
    "output",
    [
        result({"text/plain": microdata(300).to_string()}),
        display({"text/plain": microdata(300).to_string()}),
        stream(microdata(300).to_csv() + "\n"),
        stream(microdata(300).to_csv(index=False, sep=";")),
        stream(microdata(300).to_string(index=False)),
        display({"text/html": microdata(300).to_html(), "text/plain": "<DataFrame>"}),
        result({"text/markdown": markdown(microdata(300))}),
    ],
    ids=[
        "result-plain",
        "display-plain",
        "stream-csv",
        "stream-semicolons",
        "no-index",
        "display-html",
        "markdown",
    ],
)
def test_three_hundred_rows_of_microdata_fail_in_any_output(output: dict[str, Any]) -> None:
    c, found = rows_finding([output])
    assert c.status == "fail"
    assert found and found[0].status == "fail" and found[0].cells == [(0, 0)]
    assert "300 rows" in found[0].message and f"more than {MAX_TABLE_ROWS}" in found[0].message


def test_microdata_with_pseudonyms_fails_on_both_counts() -> None:
    c, found = rows_finding([result({"text/plain": microdata(300, pseudonyms=True).to_string()})])
    assert found[0].status == "fail"
    assert by_rule(c, "pseudonyms")[0].status == "fail"


def test_just_over_the_limit_fails_and_a_small_table_is_only_reviewed() -> None:
    _, found = rows_finding([stream(microdata(MAX_TABLE_ROWS + 1).to_string() + "\n")])
    assert found[0].status == "fail" and f"{MAX_TABLE_ROWS + 1} rows" in found[0].message
    _, found = rows_finding([stream(microdata(MAX_TABLE_ROWS).to_string() + "\n")])
    assert found[0].status == "review"
    small = microdata(300).groupby("offence").size().rename("n").to_frame()
    c, found = rows_finding(
        [result({"text/plain": small.to_string(), "text/html": small.to_html()})]
    )
    assert c.status == "review"  # as before: a printed table is looked at
    assert [f.status for f in found] == ["review"] and "3 rows" in found[0].message


def test_a_listing_split_over_many_outputs_fails_as_a_whole() -> None:
    frame = microdata(300)
    pieces = [display({"text/html": frame.iloc[i : i + 15].to_html()}) for i in range(0, 300, 15)]
    c = check(frozen("n.ipynb", notebook(*(code(p) for p in pieces))))
    assert all(f.status == "review" for f in by_rule(c, "printed-table"))  # each piece is small
    total = by_rule(c, "printed-table-total")
    assert total and total[0].status == "fail" and "300 table rows" in total[0].message
    assert total[0].cells == [(i, 0) for i in range(20)]
    assert c.status == "fail"


def test_rows_printed_one_by_one_in_a_loop_fail_as_one_table() -> None:
    lines = microdata(30).to_csv(index=False).splitlines(keepends=True)
    _, found = rows_finding([stream(line) for line in lines])
    assert [f.status for f in found] == ["fail"] and "30 rows" in found[0].message
    assert "31 outputs" in found[0].message


def test_a_model_summary_and_a_figure_keep_their_result() -> None:
    rng = np.random.default_rng(0)
    data = pd.DataFrame(
        {
            "y": rng.normal(size=200),
            "x": rng.normal(size=200),
            "g": rng.choice(list("abcdefghij"), 200),
        }
    )
    summary = smf.ols("y ~ x + g", data).fit().summary()
    png = base64.b64encode(PNG_1PX).decode()
    nb = notebook(
        code(result({"text/plain": str(summary), "text/html": summary._repr_html_()})),
        code(display({"image/png": png, "text/plain": "<Figure size 640x480 with 1 Axes>"})),
        code(stream("fitted in 0.2 s\n")),
    )
    c = check(frozen("n.ipynb", nb))
    assert c.status == "review"  # as before
    assert all(f.status == "review" for f in c.findings)
    assert by_rule(c, "printed-table-total") == []


def test_a_progress_log_is_not_a_table() -> None:
    log = "".join(f"Processing batch {i} of 40 took {i * 0.1:.1f} seconds\n" for i in range(40))
    c, found = rows_finding([stream(log)])
    assert found == [] and c.status == "pass"


def test_a_latex_table_counts_its_rows() -> None:
    latex = microdata(300).style.to_latex()
    _, found = rows_finding([display({"text/latex": latex, "text/plain": "<Styler>"})])
    assert found[0].status == "fail" and "300 rows" in found[0].message


def test_pseudonyms_printed_one_per_line_fail_without_counting_rows() -> None:
    c, found = rows_finding([stream("".join(f"{PSEUDO}\n" for _ in range(3)))])
    assert by_rule(c, "pseudonyms")[0].status == "fail" and found == []
