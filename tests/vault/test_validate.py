"""The corpus of bad inputs: every problem is named, with its row and column."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trenv.vault import validate as v
from trenv.vault.schema import Schema, SchemaError, load_schema
from trenv.vault.validate import validate_file

SCHEMA = Schema.model_validate(
    {
        "dataset": "cases",
        "columns": [
            {"name": "case_id", "role": "key", "required": True},
            {"name": "bsn", "type": "bsn", "role": "identifier", "required": True},
            {"name": "decision", "allowed": ["sepot", "dagvaarding"], "required": True},
            {"name": "offence_date", "type": "date"},
            {"name": "days", "type": "integer", "minimum": 0, "maximum": 730},
            {"name": "fine", "type": "float"},
            {"name": "repeat", "type": "boolean"},
        ],
    }
)
HEADER = "case_id,bsn,decision,offence_date,days,fine,repeat\n"
GOOD = "OM1,111222333,sepot,2020-01-31,10,12.5,true\n"


def _csv(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "extract.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


def _only(report: v.ValidationReport, kind: str) -> list[v.Problem]:
    assert not report.ok
    assert set(report.counts) == {kind}, report.summary()
    return report.problems


def test_good_file_is_valid(tmp_path: Path) -> None:
    report = validate_file(_csv(tmp_path, GOOD + GOOD.replace("OM1", "OM2")), SCHEMA)
    assert report.ok and report.rows == 2


@pytest.mark.parametrize(
    ("row2", "kind", "column"),
    [
        ("OM2,123456789,sepot,2020-01-31,10,12.5,true\n", v.INVALID_BSN, "bsn"),
        ("OM2,111222333,acquittal,2020-01-31,10,12.5,true\n", v.NOT_IN_CODE_LIST, "decision"),
        ("OM2,111222333,sepot,2020-02-30,10,12.5,true\n", v.WRONG_TYPE, "offence_date"),
        ("OM2,111222333,sepot,31-01-2020,10,12.5,true\n", v.WRONG_TYPE, "offence_date"),
        ("OM2,111222333,sepot,2020-01-31,ten,12.5,true\n", v.WRONG_TYPE, "days"),
        ("OM2,111222333,sepot,2020-01-31,10,12,5,true\n", v.MALFORMED_ROW, None),
        ("OM2,111222333,sepot,2020-01-31,10,abc,true\n", v.WRONG_TYPE, "fine"),
        ("OM2,111222333,sepot,2020-01-31,10,12.5,maybe\n", v.WRONG_TYPE, "repeat"),
        ("OM2,111222333,sepot,2020-01-31,999,12.5,true\n", v.OUT_OF_RANGE, "days"),
        ("OM2,111222333,,2020-01-31,10,12.5,true\n", v.MISSING_VALUE, "decision"),
        ("OM1,111222333,sepot,2020-01-31,10,12.5,true\n", v.DUPLICATE_KEY, "case_id"),
    ],
)
def test_each_problem_is_named_with_row_and_column(
    tmp_path: Path, row2: str, kind: str, column: str | None
) -> None:
    report = validate_file(_csv(tmp_path, GOOD + row2), SCHEMA)
    [problem] = _only(report, kind)
    assert problem.row == 2
    assert problem.column == column
    assert "row 2" in str(problem)


def test_missing_and_unexpected_columns(tmp_path: Path) -> None:
    header = "case_id,bsn,decision,offence_date,days,fine,colour\n"
    report = validate_file(_csv(tmp_path, GOOD, header), SCHEMA)
    kinds = {(p.kind, p.column) for p in report.problems}
    assert (v.MISSING_COLUMN, "repeat") in kinds
    assert (v.UNEXPECTED_COLUMN, "colour") in kinds


def test_encoding_error_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        (HEADER + GOOD).encode()
        + b"OM2,111222333,sepot,2020-01-31,10,1,true\n"
        + "OM3,111222333,sepot,2020-01-31,10,1,caf\xe9\n".encode("latin-1")
    )
    report = validate_file(path, SCHEMA)
    [problem] = _only(report, v.ENCODING)
    assert problem.row == 3 and "line 4" in problem.message
    # Declaring the supplier's encoding is the fix the message names.
    latin = SCHEMA.model_copy(update={"encoding": "latin-1"})
    assert not any(p.kind == v.ENCODING for p in validate_file(path, latin).problems)


def test_listing_is_capped_but_every_problem_counted(tmp_path: Path) -> None:
    body = "".join(f"OM{i},123456789,sepot,2020-01-31,10,1,true\n" for i in range(250))
    report = validate_file(_csv(tmp_path, body), SCHEMA, max_listed=20)
    assert report.problem_count == 250
    assert report.counts[v.INVALID_BSN] == 250
    assert len(report.problems) == 20
    assert "230 more" in report.summary()
    assert [p.row for p in report.problems] == list(range(1, 21))


def test_identifier_values_are_never_echoed(tmp_path: Path) -> None:
    report = validate_file(_csv(tmp_path, "OM1,123456789,sepot,2020-01-31,10,1,true\n"), SCHEMA)
    assert "123456789" not in report.summary()
    bad_code = validate_file(_csv(tmp_path, "OM1,111222333,nope,2020-01-31,1,1,true\n"), SCHEMA)
    assert "'nope'" in bad_code.summary()


def test_rows_after_a_malformed_row_keep_their_numbers(tmp_path: Path) -> None:
    body = GOOD + "OM2,too,few\n" + "OM3,123456789,sepot,2020-01-31,10,1,true\n"
    report = validate_file(_csv(tmp_path, body), SCHEMA)
    rows = {p.kind: p.row for p in report.problems}
    assert rows == {v.MALFORMED_ROW: 2, v.INVALID_BSN: 3}


def test_parquet_input_is_checked_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "extract.parquet"
    table = pa.table(
        {
            "case_id": ["OM1", "OM2"],
            "bsn": ["111222333", "111222334"],
            "decision": ["sepot", "sepot"],
            "offence_date": pa.array([None, None], pa.date32()),
            "days": [1, 2],
            "fine": [1.0, None],
            "repeat": [True, False],
        }
    )
    pq.write_table(table, path)
    [problem] = _only(validate_file(path, SCHEMA), v.INVALID_BSN)
    assert (problem.row, problem.column) == (2, "bsn")


def test_missing_file_empty_file_and_unknown_format(tmp_path: Path) -> None:
    assert _only(validate_file(tmp_path / "nope.csv", SCHEMA), v.MISSING_FILE)
    (tmp_path / "empty.csv").write_bytes(b"")
    assert _only(validate_file(tmp_path / "empty.csv", SCHEMA), v.EMPTY_FILE)
    (tmp_path / "data.xlsx").write_bytes(b"PK")
    assert _only(validate_file(tmp_path / "data.xlsx", SCHEMA), v.UNSUPPORTED_FORMAT)


def test_bad_schema_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text("dataset: x\ncolumns:\n  - name: bsn\n    type: bsn\n", encoding="utf-8")
    with pytest.raises(SchemaError, match="BSN must have role identifier"):
        load_schema(path)
    path.write_text("dataset: x\ncolumns: [\n", encoding="utf-8")
    with pytest.raises(SchemaError, match="not valid YAML"):
        load_schema(path)
