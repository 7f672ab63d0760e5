"""A grant's column rules: drop columns, coarsen dates to month or year and numbers to bands.

The rules are checked against the codebook when a grant is proposed (test_service.py) and
against the file when it is published (here): a rule that does not fit refuses the whole
publication with a problem and a fix, and the previous view stays as it was.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from trenv.errors import Invalid
from trenv.registry.grant_rules import (
    ColumnRules,
    band_labels,
    check_rules,
    parse_rules,
    rules_from_text,
)
from trenv.vault.pseudonym import project_pseudonymiser
from trenv.vault.publish import PublishError, PublishItem, publish

from .conftest import Vault

RULES = {
    "drop": ["fine_eur"],
    "coarsen": {
        "judgment_date": {"date": "month"},
        "prison_days": {"bands": [30, 180, 365]},
        "community_service_hours": {"bands": [40.5]},
    },
}


def _convictions(vault: Vault, rules: Any = None, columns: list[str] | None = None) -> PublishItem:
    ingested = vault.ingested["convictions"]
    return PublishItem(
        "convictions", "1", ingested.data_path, columns, ingested.codebook, rules=rules
    )


def test_rules_drop_and_coarsen_the_published_columns(vault: Vault, tmp_path: Path) -> None:
    key = project_pseudonymiser(vault.keys, "rules")
    result = publish("rules", [_convictions(vault, RULES)], tmp_path / "rules", key)
    view = pq.read_table(result.data_dir / "convictions.parquet")
    source = pq.read_table(vault.ingested["convictions"].data_path)
    assert "fine_eur" not in view.column_names and view.num_rows == source.num_rows
    months = [d.strftime("%Y-%m") for d in source["judgment_date"].to_pylist()]
    assert view["judgment_date"].to_pylist() == months
    for days, band in zip(
        source["prison_days"].to_pylist(), view["prison_days"].to_pylist(), strict=True
    ):
        if days is None:  # no prison sentence: stays missing
            assert band is None
        elif days < 30:
            assert band == "(-inf, 30)"
        elif days < 180:
            assert band == "[30, 180)"
        elif days < 365:
            assert band == "[180, 365)"
        else:
            assert band == "[365, inf)"
    assert view["prison_days"].null_count == source["prison_days"].null_count < view.num_rows
    hours = set(view["community_service_hours"].drop_null().to_pylist())
    assert hours == {"(-inf, 40.5)", "[40.5, inf)"}
    # Untouched columns are as they were.
    assert view["verdict"] == source["verdict"]

    entry = json.loads((result.data_dir / "manifest.json").read_text())["datasets"][0]
    assert entry["column_rules"] == RULES
    assert "fine_eur" not in entry["columns"] and "fine_eur" not in entry["codebook"]
    book = entry["codebook"]
    assert (book["judgment_date"]["type"], book["judgment_date"]["coarsened"]) == (
        "string",
        "month",
    )
    assert book["prison_days"]["type"] == "string" and "range" not in book["prison_days"]
    assert list(book["prison_days"]["codes"]) == band_labels([30, 180, 365])
    assert book["prison_days"]["coarsened"] == {"bands": [30, 180, 365]}


def test_a_date_coarsened_to_the_year_is_an_integer(vault: Vault, tmp_path: Path) -> None:
    rules = {"coarsen": {"judgment_date": {"date": "year"}}}
    key = project_pseudonymiser(vault.keys, "years")
    result = publish("years", [_convictions(vault, rules)], tmp_path / "years", key)
    view = pq.read_table(result.data_dir / "convictions.parquet")
    source = pq.read_table(vault.ingested["convictions"].data_path)
    assert view["judgment_date"].type.id == view.schema.field("judgment_date").type.id
    assert view["judgment_date"].to_pylist() == [
        d.year for d in source["judgment_date"].to_pylist()
    ]
    entry = json.loads((result.data_dir / "manifest.json").read_text())["datasets"][0]
    assert entry["codebook"]["judgment_date"]["type"] == "integer"


@pytest.mark.parametrize(
    ("rules", "columns", "problem"),
    [
        ({"drop": ["sentence"]}, None, "name column(s) sentence, which the dataset does not have"),
        (
            {"coarsen": {"verdict": {"date": "month"}}},
            None,
            "month needs dates and it holds string",
        ),
        ({"coarsen": {"judgment_date": {"bands": [1]}}}, None, "bands need numbers"),
        ({"coarsen": {"case_id": {"date": "year"}}}, None, "it is an identifier"),
        ({"coarsen": {"fine_eur": {"bands": [1]}}}, ["verdict"], "the grant does not include"),
        ({"drop": ["verdict"], "coarsen": {"verdict": {"bands": [1]}}}, None, "drops it"),
        ({"drop": ["verdict"]}, ["verdict"], "drop every granted column"),
    ],
)
def test_rules_that_do_not_fit_the_file_publish_nothing(
    vault: Vault, tmp_path: Path, rules: dict[str, Any], columns: list[str] | None, problem: str
) -> None:
    key = project_pseudonymiser(vault.keys, "refuse")
    first = publish("refuse", [_convictions(vault)], tmp_path / "refuse", key)
    before = sorted(p.name for p in (tmp_path / "refuse" / ".publications").iterdir())
    cases = vault.ingested["prosecution_cases"]
    items = [
        PublishItem("prosecution_cases", "1", cases.data_path, None, cases.codebook),
        _convictions(vault, rules, columns),
    ]
    with pytest.raises(PublishError, match=re.escape(problem)) as refused:
        publish("refuse", items, tmp_path / "refuse", key)
    assert refused.value.problem.startswith("convictions 1: ")
    assert refused.value.fix and "propose it again" in refused.value.fix
    assert sorted(p.name for p in (tmp_path / "refuse" / ".publications").iterdir()) == before
    assert json.loads((first.data_dir / "manifest.json").read_text())["datasets"][0]["dataset"] == (
        "convictions"
    )


CODEBOOK: dict[str, Any] = {
    "when": {"type": "date"},
    "amount": {"type": "float", "range": [0, None]},
    "days": {"type": "integer"},
    "code": {"type": "string"},
    "case_id": {"type": "string", "key": "record"},
    "person_pseudonym": {"type": "pseudonym"},
    "note": {},
}


def test_check_rules_against_the_codebook() -> None:
    ok = rules_from_text("code", ["when=year", "amount=bands:0,100,1e3", "days=bands:7"])
    assert check_rules(ok, CODEBOOK, None, "d@1") == ok
    assert ok.as_json() == {
        "drop": ["code"],
        "coarsen": {
            "when": {"date": "year"},
            "amount": {"bands": [0, 100, 1000.0]},
            "days": {"bands": [7]},
        },
    }
    assert ok.describe() == "drop code; when: year; amount: bands 0,100,1000; days: bands 7"
    assert ColumnRules().as_json() is None and parse_rules(None).empty
    for text, granted, problem, fix in (
        (["nowhere=month"], None, "which dataset d@1 does not have", "Its columns are: when"),
        (["code=month"], None, "month needs a date column; its codebook type is string", "drop"),
        (["when=bands:1"], None, "bands need an integer or float column", "Coarsen dates"),
        (["note=year"], None, "its codebook type is not given", "Coarsen dates"),
        (["case_id=bands:1"], None, "it is an identifier", "Drop it instead"),
        (["person_pseudonym=year"], None, "it is an identifier", "Drop it instead"),
        (["days=bands:1"], ["when"], "which the grant does not include", "--columns"),
    ):
        with pytest.raises(Invalid) as refused:
            check_rules(rules_from_text(None, text), CODEBOOK, granted, "d@1")
        assert problem in refused.value.problem, text
        assert refused.value.fix and fix in refused.value.fix, text
    with pytest.raises(Invalid, match="drop every granted column"):
        check_rules(rules_from_text("when,amount", []), CODEBOOK, ["when", "amount"], "d@1")


@pytest.mark.parametrize(
    ("drop", "coarsen", "problem"),
    [
        (None, ["when"], "cannot read the coarsening 'when'"),
        (None, ["when=week"], "unknown coarsening 'week'"),
        (None, ["amount=bands:1,x"], "band edge 'x'"),
        (None, ["amount=bands:5,1"], "strictly increasing"),
        (None, ["amount=bands:1,inf"], "finite"),
        (None, ["amount=bands:"], "band edge ''"),
        (None, ["when=year", "when=month"], "coarsened twice"),
    ],
)
def test_rules_as_typed_are_read_or_refused_with_a_fix(
    drop: str | None, coarsen: list[str], problem: str
) -> None:
    with pytest.raises(Invalid) as refused:
        rules_from_text(drop, coarsen)
    assert problem in refused.value.problem
    assert refused.value.fix


def test_malformed_stored_rules_are_refused() -> None:
    for raw in ({"drop": "when"}, {"coarsen": {"when": {"date": "week"}}}, {"keep": ["x"]}):
        with pytest.raises(Invalid, match="malformed"):
            parse_rules(raw)
