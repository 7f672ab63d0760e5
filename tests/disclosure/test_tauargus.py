"""The tau-ARGUS batch writer: its files read back by a parser written here from the format
documentation (tau-ARGUS 4.1 manual sections 4.3.2, 5.1.4, 5.2, 5.6, 5.7; the 4.2 source
where the manual is silent), golden files for a small table, hierarchies, and refusals.

The golden files are in tests/disclosure/golden/tauargus/; after a deliberate format change
rewrite them with ``write_batch(court_table("sum"), folder, "courts")`` and review the diff.
"""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import trenv.lab as tre
from tests.disclosure.tau_records import build, court_table, flat_axis, nested_axis
from trenv.airlock.intake import normalise_path
from trenv.disclosure import DisclosureInputError, check_table
from trenv.disclosure.policy import Policy, load_policy
from trenv.disclosure.tauargus import write_batch
from trenv.errors import Invalid

GOLDEN = Path(__file__).with_name("golden") / "tauargus"

# --- an independent reader of the formats, from the manual ---------------------------------


def parse_rda(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Separator and variables: a name on its own line, then its <KEYWORD> lines."""
    separator = ""
    variables: list[dict[str, Any]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("<"):
            keyword, _, arg = line.partition(" ")
            arg = arg.strip().strip('"')
            if keyword == "<SEPARATOR>":
                separator = arg
            else:
                variables[-1]["keywords"][keyword] = arg
        else:
            assert " " not in line, f"a variable name ends at a space: {line!r}"
            variables.append({"name": line, "keywords": {}})
    return separator, variables


def parse_tab(text: str, separator: str, variables: list[dict[str, Any]]) -> list[dict[str, str]]:
    names = [v["name"] for v in variables]
    rows = []
    for line in text.splitlines():
        fields = line.split(separator)
        assert len(fields) == len(names), line
        rows.append(dict(zip(names, fields, strict=True)))
    return rows


def parse_hrc(text: str, lead: str) -> list[tuple[str, int]]:
    out = []
    for line in text.splitlines():
        depth = 0
        while line.startswith(lead):
            line, depth = line[len(lead) :], depth + 1
        out.append((line, depth + 1))
    return out


def parse_arb(text: str) -> list[tuple[str, str]]:
    commands = []
    for line in text.splitlines():
        if line.startswith("//") or not line.strip():
            continue
        match = re.fullmatch(r"(<[A-Z]+>)\s*(.*)", line.strip())
        assert match, line
        commands.append((match.group(1), match.group(2)))
    return commands


def parse_rules(argument: str) -> dict[str, list[int]]:
    rules = {}
    for part in argument.split("|"):
        match = re.fullmatch(r"([A-Z]+)\((\d+(?:,\d+)*)\)", part)
        assert match, f"{part!r}: rules take whole numbers only"
        rules[match.group(1)] = [int(x) for x in match.group(2).split(",")]
    return rules


def parse_codes(text: str) -> dict[tuple[str, str], tuple[int, list[str]]]:
    return {
        (r["variable"], r["code"]): (int(r["level"]), json.loads(r["labels"]))
        for r in csv.DictReader(io.StringIO(text))
    }


def written(tmp_path: Path, record: Any, name: str = "t", **kw: Any) -> dict[str, str]:
    files = write_batch(record, tmp_path / name, name, **kw)
    return {n: p.read_text(encoding="utf-8") for n, p in files.items()}


def labels_to_codes(codes: dict[tuple[str, str], tuple[int, list[str]]], variable: str) -> dict:
    return {
        tuple(labels): code
        for (var, code), (level, labels) in codes.items()
        if var == variable and level
    }


def cell_codes(record: Any, i: int, variables: list[str], codes: dict) -> list[str]:
    """The codes of record cell ``i`` as the mapping file gives them."""
    cells = record.cells
    out = []
    parts = [(cells.row[i], cells.row_margin[i], cells.row_level)]
    if record.columns:
        parts.append((cells.column[i], cells.column_margin[i], cells.column_level))
    for variable, (labels, margin, levels) in zip(variables, parts, strict=True):
        if margin:
            out.append("Total")
        else:
            path = labels[: levels[i]] if levels is not None else labels
            out.append(labels_to_codes(codes, variable)[tuple(path)])
    return out


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("statistic", ["count", "sum"])
def test_the_table_reads_back_cell_for_cell(tmp_path: Path, statistic: str) -> None:
    record = court_table(statistic)
    files = written(tmp_path, record)
    separator, variables = parse_rda(files["t.rda"])
    assert separator == ";"
    names = [v["name"] for v in variables]
    spanning = [v["name"] for v in variables if "<RECODEABLE>" in v["keywords"]]
    assert spanning == ["region", "offence"]
    assert all(variables[k]["keywords"]["<TOTCODE>"] == "Total" for k in range(2))
    kinds = {v["name"]: set(v["keywords"]) for v in variables}
    assert kinds["Value"] == {"<NUMERIC>", "<DECIMALS>"}
    assert kinds["Freq"] == {"<FREQUENCY>"}
    tops = [n for n in names if kinds[n] == {"<MAXSCORE>"}]
    assert tops == ([] if statistic == "count" else ["Top1", "Top2"])
    decimals = int(variables[2]["keywords"]["<DECIMALS>"])
    assert decimals == (0 if statistic == "count" else 2)
    rows = parse_tab(files["t.tab"], separator, variables)
    codes = parse_codes(files["codes.csv"])
    by_codes = {(r["region"], r["offence"]): r for r in rows}
    assert len(rows) == len(by_codes) == len(record.cells) == 12
    for i in range(len(record.cells)):
        row = by_codes[tuple(cell_codes(record, i, spanning, codes))]
        assert float(row["Value"]) == pytest.approx(record.cells.value[i], abs=0.005)
        assert int(row["Freq"]) == record.cells.contributors[i]
        for k, top in enumerate(tops):
            # written rounded down, never above the recorded contribution
            assert Decimal(row[top]) <= Decimal(repr(record.cells.top[i][k]))
            assert float(row[top]) == pytest.approx(record.cells.top[i][k], abs=0.01)
    # additivity, exactly as written (tau-ARGUS checks it to 1e-14)
    region_codes = {c for (v, c) in codes if v == "region" and c != "Total"}
    for offence in {r["offence"] for r in rows}:
        total = by_codes[("Total", offence)]["Value"]
        parts = sum(Decimal(by_codes[(c, offence)]["Value"]) for c in region_codes)
        assert Decimal(total) == parts
    for r in rows:
        assert sum(Decimal(r[t]) for t in tops) <= Decimal(r["Value"])
        assert [Decimal(r[t]) for t in tops] == sorted((Decimal(r[t]) for t in tops), reverse=True)


def test_codes_are_safe_whatever_the_labels(tmp_path: Path) -> None:
    nasty = ["a;b", 'say "hi"', "@home", "Total", "  ", "x" * 300, "ñ,é", "1\n2"]
    inner = {((n,), ("o",)): (15.0, 15, []) for n in nasty}
    inner.update({((n,), ("p",)): (20.0, 20, []) for n in nasty})
    record = build(inner, flat_axis(nasty), flat_axis(["o", "p"]))
    files = written(tmp_path, record)
    codes = parse_codes(files["codes.csv"])
    region = {c: labels for (v, c), (_, labels) in codes.items() if v == "region"}
    assert sorted(labels[0] for labels in region.values() if labels) == sorted(nasty)
    for code in region:
        assert re.fullmatch(r"Total|R\d{3}", code)
    assert len({len(c) for c in region if c != "Total"}) == 1  # one width: nothing padded
    for line in files["t.tab"].splitlines():
        assert len(line.split(";")) == 4 and '"' not in line


def test_the_policy_rules_become_tau_argus_rules(tmp_path: Path) -> None:
    arb = parse_arb(written(tmp_path, court_table("sum"))["t.arb"])
    rules = parse_rules(dict(arb)["<SAFETYRULE>"])
    # trenv-default: threshold 10, (2, 0.90), p 10%, width 25% -> 12.5% a side, rounded up
    assert rules == {"FREQ": [10, 13], "NK": [2, 90], "P": [10, 1], "MAN": [13]}
    counts = parse_arb(written(tmp_path, court_table("count"), "c")["c.arb"])
    assert parse_rules(dict(counts)["<SAFETYRULE>"]) == {"FREQ": [10, 13], "MAN": [13]}


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("cbs", {"FREQ": [10, 8], "NK": [2, 75], "P": [10, 1], "MAN": [8]}),
        ("sacro", {"FREQ": [10, 0], "NK": [2, 90], "P": [10, 1], "MAN": [0]}),
        ("opensafely", {"FREQ": [8, 13], "MAN": [13]}),  # dominance and p% only reviewed
    ],
)
def test_each_profile_translates(tmp_path: Path, policy: str, expected: dict) -> None:
    record = court_table("sum").model_copy(
        update={"policy": policy, "policy_parameters": load_policy(policy).model_dump()}
    )
    files = written(tmp_path, record)
    assert parse_rules(dict(parse_arb(files["t.arb"]))["<SAFETYRULE>"]) == expected
    if policy == "opensafely":
        assert "dominance-nk (0 cell(s) flagged in this table): only reviewed" in files[
            "README.txt"
        ].replace("\n    ", " ")


def test_fractional_parameters_round_to_the_stricter_whole_percentage(tmp_path: Path) -> None:
    base = load_policy("trenv-default").model_dump()
    custom = Policy.model_validate(
        {**base, "name": "custom", "dominance": {"n": 3, "k": 0.875}, "p_percent": {"p": 0.125}}
    )
    record = court_table("sum").model_copy(
        update={"policy": "custom", "policy_parameters": custom.model_dump()}
    )
    files = written(tmp_path, record)
    rules = parse_rules(dict(parse_arb(files["t.arb"]))["<SAFETYRULE>"])
    assert rules["NK"] == [3, 87] and rules["P"] == [13, 1]
    assert "rounded down to a whole percentage (stricter)" in files["README.txt"].replace(
        "\n    ", " "
    )


def test_the_a_priori_file_carries_trenvs_pattern_and_widths(tmp_path: Path) -> None:
    record = court_table("count")
    files = written(tmp_path, record)
    codes = parse_codes(files["codes.csv"])
    lines = [line.split(";") for line in files["t.hst"].splitlines()]
    status = {tuple(f[:2]): f[2] for f in lines if f[2] == "U"}
    levels = {tuple(f[:2]): (float(f[3]), float(f[4])) for f in lines if f[2] == "PL"}
    expected = {
        tuple(cell_codes(record, i, ["region", "offence"], codes)): kind
        for i, kind in enumerate(record.cells.suppressed)
        if kind
    }
    assert set(status) == set(levels) == set(expected)
    for key, kind in expected.items():
        lower, upper = levels[key]
        if kind == "secondary":
            assert (lower, upper) == (0, 0)
        else:  # trenv-default: width max(5, 25% of 3) = 5, at most 3 below a count of 3
            assert (lower, upper) == (2.5, 2.5)
    arb = parse_arb(files["t-audit.arb"])
    assert [c for c, _ in arb] == [
        "<OPENTABLEDATA>", "<OPENMETADATA>", "<SPECIFYTABLE>", "<SAFETYRULE>", "<READTABLE>",
        "<APRIORY>", "<SOLVER>", "<SUPPRESS>", "<WRITETABLE>",
    ]  # fmt: skip
    assert dict(arb)["<APRIORY>"] == '"t.hst",1,";",0,0'
    assert "<APRIORY>" not in dict(parse_arb(files["t.arb"]))


def test_a_primary_near_zero_gets_its_width_above(tmp_path: Path) -> None:
    inner = {((r,), (o,)): (float(n), n, []) for r, o, n in
             [("a", "x", 1), ("a", "y", 30), ("b", "x", 30), ("b", "y", 30)]}  # fmt: skip
    record = build(
        inner, flat_axis(["a", "b"]), flat_axis(["x", "y"]),
        suppressed={(("a",), ("x",)): "primary", (("a",), ("y",)): "secondary",
                    (("b",), ("x",)): "secondary", (("b",), ("y",)): "secondary"},
    )  # fmt: skip
    hst = written(tmp_path, record)["t.hst"].splitlines()
    assert "R001;C001;PL;1.00;4.00" in hst  # width 5, only 1 below the value


def test_the_batch_commands_come_in_tau_argus_order_and_name_real_files(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    files = written(tmp_path, court_table("sum"), method="OPT", interactive=True)
    for arb in ("t.arb", "t-audit.arb"):
        commands = dict(parse_arb(files[arb]))
        for command in ("<OPENTABLEDATA>", "<OPENMETADATA>"):
            assert (folder / commands[command].strip('"')).is_file()
        assert commands["<SPECIFYTABLE>"] == '"region""offence"|"Value"|"Value"|"Value"'
        assert commands["<READTABLE>"] == "0"
        assert commands["<SUPPRESS>"] == "OPT(1,5)"
        out = re.fullmatch(
            r'\(1,3,AS\+FL\+QU\+,"(t(-audit)?-safe\.csv)"\)', commands["<WRITETABLE>"]
        )
        assert out and "/" not in out.group(1)
        assert parse_arb(files[arb])[-1] == ("<GOINTERACTIVE>", "")
    assert "MOD(1,5,1,1,1)" in written(tmp_path, court_table("sum"), "m")["m.arb"]


def test_golden_files_for_a_small_table(tmp_path: Path) -> None:
    files = written(tmp_path, court_table("sum"), "courts")
    assert sorted(files) == sorted(p.name for p in GOLDEN.iterdir())
    for name, text in files.items():
        assert text == (GOLDEN / name).read_text(encoding="utf-8"), name


# --- hierarchies ---------------------------------------------------------------------------

TREE = {
    "Utrecht": ["Utrecht", "Amersfoort", "Zeist"],
    "Zeeland": ["Goes"],
    "Flevoland": ["Almere", "Lelystad"],
}


def hierarchical(columns_nested: bool = False) -> Any:
    col_tree = {"violent": ["assault", "robbery"], "property": ["theft"]}
    cols = nested_axis(col_tree) if columns_nested else flat_axis(["theft", "fraud"])
    col_leaves = [r[0] for r in cols if r[1] in (None, 2) and r[0] != ("All",)]
    inner = {}
    for p, ms in TREE.items():
        for k, m in enumerate(ms):
            for j, c in enumerate(col_leaves):
                n = 2 if m == "Goes" else 11 + k + j
                inner[((p, m), c)] = (float(n), n, [])
    return build(
        inner, nested_axis(TREE), cols, index=("province", "municipality"),
        columns=("group", "offence") if columns_nested else ("offence",),
        suppressed={(("Zeeland", "Goes"), col_leaves[0]): "primary"},
    )  # fmt: skip


def test_a_nested_axis_is_one_hierarchical_variable(tmp_path: Path) -> None:
    record = hierarchical()
    files = written(tmp_path, record)
    _, variables = parse_rda(files["t.rda"])
    region = variables[0]
    assert region["name"] == "province_municipality"
    kw = region["keywords"]
    assert "<HIERARCHICAL>" in kw and kw["<HIERLEADSTRING>"] == "@"
    hrc = parse_hrc(files[kw["<HIERCODELIST>"]], "@")
    codes = parse_codes(files["codes.csv"])
    labels = {code: codes[("province_municipality", code)][1] for code, _ in hrc}
    # parents before their children, a child's labels extend its parent's, levels 1 and 2
    stack: list[list[str]] = []
    for code, level in hrc:
        assert level == len(labels[code]) and level in (1, 2)
        stack = stack[: level - 1]
        assert labels[code][:-1] == (stack[-1] if stack else [])
        stack.append(labels[code])
    assert [labels[c][0] for c, lv in hrc if lv == 1] == list(TREE)
    assert sorted(tuple(labels[c]) for c, lv in hrc if lv == 2) == sorted(
        (p, m) for p, ms in TREE.items() for m in ms
    )
    # every subtotal is in the table and is the sum of its municipalities
    separator, variables = parse_rda(files["t.rda"])
    rows = parse_tab(files["t.tab"], separator, variables)
    value = {(r["province_municipality"], r["offence"]): int(r["Value"]) for r in rows}
    children = {
        c: [d for d, lv in hrc if lv == 2 and labels[d][0] == labels[c][0]]
        for c, lv in hrc
        if lv == 1
    }
    for parent, kids in children.items():
        for offence in ("C001", "C002", "Total"):
            assert value[(parent, offence)] == sum(value[(k, offence)] for k in kids)
    assert value[("Total", "Total")] == sum(value[(p, "Total")] for p in children)
    # the a-priori file names the leaf
    goes = next(c for c in labels if labels[c] == ["Zeeland", "Goes"])
    assert files["t.hst"].splitlines()[0] == f"{goes};C001;U"


def test_both_axes_nested(tmp_path: Path) -> None:
    files = written(tmp_path, hierarchical(columns_nested=True))
    _, variables = parse_rda(files["t.rda"])
    assert [v["name"] for v in variables[:2]] == ["province_municipality", "group_offence"]
    assert all("<HIERARCHICAL>" in v["keywords"] for v in variables[:2])
    hrc = parse_hrc(files["t-group_offence.hrc"], "@")
    assert [lv for _, lv in hrc] == [1, 2, 2, 1, 2]
    assert len(files["t.tab"].splitlines()) == (6 + 3 + 1) * (3 + 2 + 1)


def test_a_hierarchy_missing_a_subtotal_is_refused(tmp_path: Path) -> None:
    record = hierarchical()
    cells = record.cells
    keep = [i for i in range(len(cells)) if cells.row[i] != ["Zeeland", "All"]]
    trimmed = cells.model_copy(
        update={k: [getattr(cells, k)[i] for i in keep] for k in type(cells).model_fields
                if isinstance(getattr(cells, k), list)}
    )  # fmt: skip
    with pytest.raises(DisclosureInputError, match="no subtotal row for \\['Zeeland'\\]"):
        write_batch(record.model_copy(update={"cells": trimmed}), tmp_path / "x", "x")


def test_a_level_that_contradicts_the_margin_is_refused(tmp_path: Path) -> None:
    record = hierarchical()
    levels = list(record.cells.row_level or [])
    levels[levels.index(0)] = 1
    bad = record.model_copy(update={"cells": record.cells.model_copy(update={"row_level": levels})})
    with pytest.raises(DisclosureInputError, match="level 0 and the row total"):
        write_batch(bad, tmp_path / "x", "x")


def test_a_flat_axis_of_two_variables_is_one_variable_of_combinations(tmp_path: Path) -> None:
    df = pd.DataFrame(
        [{"a": a, "b": b, "o": o, "pid": f"{a}{b}{o}{k}"}
         for a in "xy" for b in "uv" for o in "pq" for k in range(12)]
    )  # fmt: skip
    record = check_table(
        df, index=["a", "b"], columns=["o"], contributor="pid", margins=True
    ).record
    files = written(tmp_path, record)
    _, variables = parse_rda(files["t.rda"])
    assert variables[0]["name"] == "a_b" and "<HIERARCHICAL>" not in variables[0]["keywords"]
    codes = parse_codes(files["codes.csv"])
    assert sorted(lab for (v, _), (lv, lab) in codes.items() if v == "a_b" and lv) == [
        ["x", "u"], ["x", "v"], ["y", "u"], ["y", "v"]
    ]  # fmt: skip
    assert len(files["t.tab"].splitlines()) == 5 * 3


def test_a_one_way_table_has_one_spanning_variable(tmp_path: Path) -> None:
    df = pd.DataFrame(
        [{"a": a, "pid": f"{a}{k}"} for a in "xyz" for k in range(4 if a == "z" else 15)]
    )
    record = check_table(df, index=["a"], contributor="pid", margins=True).record
    files = written(tmp_path, record)
    commands = dict(parse_arb(files["t.arb"]))
    assert commands["<SPECIFYTABLE>"].startswith('"a"|')
    lines = files["t.tab"].splitlines()
    assert len(lines) == 4 and all(len(x.split(";")) == 3 for x in lines)
    assert "Total;34;34" in lines
    hst = files["t.hst"].splitlines()
    assert hst[0].endswith(";U") and len(hst[0].split(";")) == 2


def test_a_record_from_check_table_round_trips(tmp_path: Path) -> None:
    df = pd.DataFrame(
        [{"r": r, "c": c, "v": float(10 * i + j + 1), "pid": f"p{r}{c}{i}"}
         for r in "abc" for c in "xy" for i in range(3 if (r, c) == ("c", "y") else 14)
         for j in range(2)]
    )  # fmt: skip
    record = check_table(
        df, index=["r"], columns=["c"], values="v", statistic="sum", contributor="pid", margins=True
    ).record
    files = written(tmp_path, record)
    separator, variables = parse_rda(files["t.rda"])
    rows = parse_tab(files["t.tab"], separator, variables)
    codes = parse_codes(files["codes.csv"])
    by = {(r["r"], r["c"]): r for r in rows}
    for i in range(len(record.cells)):
        row = by[tuple(cell_codes(record, i, ["r", "c"], codes))]
        assert float(row["Value"]) == record.cells.value[i]
        assert int(row["Freq"]) == record.cells.contributors[i]
    assert (
        sum(s is not None for s in record.cells.suppressed) == len(files["t.hst"].splitlines()) / 2
    )


# --- what tau-ARGUS cannot take ------------------------------------------------------------


def test_negative_values_drop_the_top_n_rules_and_say_so(tmp_path: Path) -> None:
    record = court_table("sum")
    negatives = [0] * len(record.cells)
    negatives[0] = 1
    record = record.model_copy(
        update={"cells": record.cells.model_copy(update={"negatives": negatives})}
    )
    files = written(tmp_path, record)
    _, variables = parse_rda(files["t.rda"])
    assert not any("<MAXSCORE>" in v["keywords"] for v in variables)
    assert parse_rules(dict(parse_arb(files["t.arb"]))["<SAFETYRULE>"]) == {
        "FREQ": [10, 13],
        "MAN": [13],
    }
    readme = files["README.txt"].replace("\n    ", " ")
    assert "dominance-nk (0 cell(s) flagged in this table): the table has negative values" in readme
    assert "p-percent" in readme


def test_rules_without_a_counterpart_are_listed_with_their_flags(tmp_path: Path) -> None:
    record = court_table("count")
    flags = [list(f) for f in record.cells.flags]
    flags[0] = ["class-disclosure"]
    record = record.model_copy(update={"cells": record.cells.model_copy(update={"flags": flags})})
    readme = written(tmp_path, record)["README.txt"].replace("\n    ", " ")
    assert "CONFIDENTIAL" in readme.splitlines()[0]
    assert "class-disclosure (1 cell(s) flagged in this table): review under this policy" in readme
    assert "zeros (0 cell(s) flagged in this table): suppress under this policy" in readme
    assert "constant-value" not in readme  # does not apply to counts


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "figure"}, "this output is a figure, not a table"),
        ({"statistic": "median"}, "cannot protect a table of 'median'"),
        ({"statistic": "mean"}, "A table of means is protected through its table of sums"),
        ({"margins": False}, "made without margins"),
    ],
)
def test_outputs_tau_argus_cannot_take_are_refused(
    tmp_path: Path, change: dict, message: str
) -> None:
    with pytest.raises(DisclosureInputError, match=message):
        write_batch(court_table("sum").model_copy(update=change), tmp_path / "x", "x")
    assert not (tmp_path / "x").exists()


def test_a_describe_record_is_refused(tmp_path: Path) -> None:
    record = court_table("count")
    per_cell = record.cells.model_copy(update={"statistic": ["count"] * len(record.cells)})
    with pytest.raises(DisclosureInputError, match="describe"):
        write_batch(record.model_copy(update={"cells": per_cell}), tmp_path / "x", "x")


def test_a_record_whose_totals_do_not_add_up_is_refused(tmp_path: Path) -> None:
    record = court_table("count")
    values = list(record.cells.value)
    values[record.cells.row_margin.index(True)] += 7  # a tampered total
    bad = record.model_copy(update={"cells": record.cells.model_copy(update={"value": values})})
    with pytest.raises(DisclosureInputError, match="not one additive table"):
        write_batch(bad, tmp_path / "x", "x")


def test_a_record_missing_a_cell_is_refused(tmp_path: Path) -> None:
    record = court_table("count")
    cells = record.cells
    trimmed = cells.model_copy(
        update={k: getattr(cells, k)[1:] for k in type(cells).model_fields
                if isinstance(getattr(cells, k), list)}
    )  # fmt: skip
    with pytest.raises(DisclosureInputError, match="11 of the table's 12 cells"):
        write_batch(record.model_copy(update={"cells": trimmed}), tmp_path / "x", "x")


@pytest.mark.parametrize("name", ["../up", "a b", "", ".hidden", "x" * 65, "tab;le"])
def test_unsafe_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(DisclosureInputError, match="cannot name tau-ARGUS files"):
        write_batch(court_table("count"), tmp_path / "x", name)


def test_files_are_never_overwritten_and_are_owner_only(tmp_path: Path) -> None:
    files = write_batch(court_table("count"), tmp_path / "x", "t")
    assert all(p.stat().st_mode & 0o077 == 0 for p in files.values())
    before = files["t.tab"].read_bytes()
    with pytest.raises(DisclosureInputError, match="never overwritten"):
        write_batch(court_table("sum"), tmp_path / "x", "t")
    assert files["t.tab"].read_bytes() == before


def test_another_policy_than_the_records_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DisclosureInputError, match="checked under policy 'trenv-default'"):
        write_batch(court_table("count"), tmp_path / "x", "x", policy=load_policy("cbs"))


# --- the researcher side and the airlock ---------------------------------------------------


def test_tre_tau_argus_writes_into_the_workspace_not_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRENV_WORKSPACE", str(tmp_path))
    df = pd.DataFrame(
        [{"a": a, "b": b, "pid": f"{a}{b}{k}"} for a in "xy" for b in "uv" for k in range(12)]
    )
    table = tre.crosstab(df.a, df.b, contributor=df.pid, margins=True, policy="trenv-default")
    folder = tre.tau_argus(table, "ab")
    assert folder == tmp_path / "tau-argus" / "ab"
    assert (folder / "ab.arb").is_file() and not (tmp_path / "outputs").exists()
    with pytest.raises(FileExistsError):
        tre.tau_argus(table, "ab")
    with pytest.raises(TypeError):
        tre.tau_argus(df, "other")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "path", ["tau-argus/ab/README.txt", "Tau-Argus/ab/codes.csv", "./tau-argus/x.csv"]
)
def test_the_airlock_refuses_files_under_tau_argus(path: str) -> None:
    with pytest.raises(Invalid, match="tau-ARGUS input"):
        normalise_path(path)
    assert normalise_path("outputs/tau-argus.csv") == "outputs/tau-argus.csv"


def test_the_interchange_modules_are_pure() -> None:
    import json as _json
    import subprocess
    import sys

    code = (
        "import trenv.disclosure.tauargus_compare, sys, json; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    mods = set(_json.loads(out.stdout))
    assert {
        m for m in mods if m.startswith("trenv.") and not m.startswith("trenv.disclosure")
    } == set()
    assert not {"sqlalchemy", "requests", "urllib3", "httpx"} & mods
