"""The lock-down's decisions as pure functions: which paths, sizes and formats pass."""

from __future__ import annotations

import base64

import pytest

from trenv.judge.files import FileVerdict
from trenv.lab.server.decisions import (
    MB,
    FileFacts,
    Limits,
    content_refusal,
    download_refusal,
    is_under,
    payload_bytes,
    raw_read_refusal,
    reads_notebook,
    relative_to_base,
    stopped_refusal,
    upload_refusal,
    wants_download,
)
from trenv.lab.server.endpoints import RequestBodyError, export_request_body

LIMITS = Limits(data_roots=("/data",), max_raw_read_bytes=1 * MB, max_upload_bytes=10 * MB)


def facts(resolved: str, size: int = 10, *, is_dir: bool = False, head: bytes = b"") -> FileFacts:
    return FileFacts(resolved=resolved, exists=True, is_dir=is_dir, size=size, head=head)


@pytest.mark.parametrize(
    ("path", "base", "expected"),
    [
        ("/user/rosa/files/a.csv", "/user/rosa/", "files/a.csv"),
        ("/user/rosa", "/user/rosa/", ""),
        ("/user/bob/files/a.csv", "/user/rosa/", None),
        ("/files/a.csv", "/", "files/a.csv"),
    ],
)
def test_relative_to_base(path: str, base: str, expected: str | None) -> None:
    assert relative_to_base(path, base) == expected


@pytest.mark.parametrize(
    "path",
    [
        "files/outputs/t.csv",
        "files/",
        "files",
        "view/notes.txt",
        "nbconvert/html/analysis.ipynb",
        "nbconvert/script",
        "//files/x",
        "./files/x",
    ],
)
def test_download_handlers_are_refused(path: str) -> None:
    refusal = download_refusal(path, {})
    assert refusal is not None and refusal.reason == "download"
    assert "airlock" in refusal.message


@pytest.mark.parametrize("value", ["1", "true", "yes", "anything"])
def test_any_download_query_is_refused(value: str) -> None:
    assert wants_download({"download": [value]})
    assert download_refusal("api/contents/t.csv", {"download": [value]}) is not None


@pytest.mark.parametrize("path", ["lab", "lab/tree/x.ipynb", "api/contents/a.csv", "filesx/a"])
def test_other_routes_pass(path: str) -> None:
    assert download_refusal(path, {"download": ["0"]}) is None
    assert download_refusal(path, {}) is None


def test_is_under_compares_components() -> None:
    assert is_under("/data/x.parquet", ["/data"])
    assert is_under("/data", ["/data"])
    assert not is_under("/database/x", ["/data"])
    assert not is_under("/home/jovyan/work/data/x", ["/data"])


@pytest.mark.parametrize(
    ("name", "head", "refused"),
    [
        ("notes.txt", b"PAR1\x15\x04", True),  # a parquet file renamed
        ("notes.txt", b"SQLite format 3\x00", True),
        ("x.bin", b"\x00" * 8 + b"DUCK", True),
        ("readme.md", b"PK\x03\x04", True),
        ("t.parquet", b"a,b\n1,2\n", False),  # the name alone decides nothing
        ("T.CSV", b"a,b\n1,2\n", False),  # read and judged on its content
        ("notes.txt", b"hello", False),
    ],
)
def test_data_formats_are_refused_before_reading_whatever_the_name(
    name: str, head: bytes, refused: bool
) -> None:
    found = facts(f"/home/jovyan/work/{name}", size=len(head), head=head)
    refusal = raw_read_refusal(name, found, {}, LIMITS)
    assert (refusal is not None) is refused
    if refusal is not None:
        assert refusal.reason == "data-read" and "whatever its name" in refusal.message


def test_anything_under_data_is_refused_whatever_its_size_or_name() -> None:
    for name in ("people.parquet", "readme.txt", "analysis.ipynb"):
        refusal = raw_read_refusal(name, facts(f"/data/{name}", size=5), {}, LIMITS)
        assert refusal is not None and refusal.reason == "data-read", name


def test_symlink_into_data_is_judged_by_its_target() -> None:
    # work/harmless.txt -> /data/people.parquet: the resolved path decides.
    refusal = raw_read_refusal("harmless.txt", facts("/data/people.parquet"), {}, LIMITS)
    assert refusal is not None and "/data" in refusal.message


def test_metadata_and_listings_stay_allowed() -> None:
    assert raw_read_refusal("x", facts("/data/x.parquet"), {"content": ["0"]}, LIMITS) is None
    assert raw_read_refusal("d", facts("/data/d", is_dir=True), {}, LIMITS) is None
    missing = FileFacts("/home/jovyan/work/nope.csv", exists=False, is_dir=False, size=0)
    assert raw_read_refusal("nope.csv", missing, {}, LIMITS) is None


@pytest.mark.parametrize(
    ("name", "size", "head", "refused"),
    [
        ("outputs/t.csv", 2 * MB, b"a,b\n", True),
        ("outputs/t.csv", MB, b"a,b\n", False),  # at the limit: read, then judged by content
        ("copy.txt", 2 * MB, b"PAR1", True),
        ("notes.txt", 5 * MB, b"plain", True),  # not data, but too large to show
        ("figure.png", 2 * MB, b"\x89PNG\r\n\x1a\n", True),
    ],
)
def test_files_above_the_limit(name: str, size: int, head: bytes, refused: bool) -> None:
    found = facts(f"/home/jovyan/work/{name}", size=size, head=head)
    for query in ({}, {"type": ["file"], "format": ["base64"]}, {"content": ["1"]}):
        assert (raw_read_refusal(name, found, query, LIMITS) is not None) is refused


def test_too_large_names_the_size_and_the_way_out() -> None:
    found = facts("/home/jovyan/work/notes.txt", size=5 * MB, head=b"plain")
    refusal = raw_read_refusal("notes.txt", found, {}, LIMITS)
    assert refusal is not None and "too large to show" in refusal.message
    assert "5.0 MB" in refusal.message and "notebook" in refusal.message


def test_notebooks_are_judged_on_their_model_not_refused_by_size() -> None:
    found = facts("/home/jovyan/work/analysis.ipynb", size=5 * MB, head=b'{"cells"')
    assert raw_read_refusal("analysis.ipynb", found, {}, LIMITS) is None
    assert raw_read_refusal("a.ipynb", found, {"type": ["notebook"]}, LIMITS) is None
    # Read as a plain file, a notebook is a text file like any other.
    assert raw_read_refusal("analysis.ipynb", found, {"type": ["file"]}, LIMITS) is not None
    assert reads_notebook("x.IPYNB", {}) and reads_notebook("x.txt", {"type": ["notebook"]})
    assert not reads_notebook("x.ipynb", {"type": ["file"]})


def test_content_refusals_name_what_the_file_looks_like() -> None:
    assert content_refusal("n.md", FileVerdict("text", "text", "text")) is None
    assert content_refusal("f.png", FileVerdict("image", "a PNG image", "image")) is None
    refusal = content_refusal(
        "notes.txt",
        FileVerdict("data", "tabular data (300 rows; at most 48 are shown)", "table-rows"),
    )
    assert refusal is not None and refusal.reason == "data-read"
    assert "notes.txt looks like tabular data (300 rows" in refusal.message
    assert "notebook" in refusal.message and "airlock" in refusal.message
    stopped = stopped_refusal("[trenv] Text output to your browser stopped for this hour")
    assert stopped.reason == "egress-stopped" and "stopped" in stopped.message


def test_symlink_name_does_not_hide_a_data_target() -> None:
    target = facts("/home/jovyan/work/big.parquet", size=3 * MB)
    assert raw_read_refusal("notes.txt", target, {}, LIMITS) is not None


def test_payload_sizes() -> None:
    data = b"x" * 3000
    assert payload_bytes({"format": "base64", "content": base64.b64encode(data).decode()}) == 3000
    assert payload_bytes({"format": "text", "content": "é" * 10}) == 20
    assert payload_bytes({"type": "notebook", "content": {"cells": []}}) > 0
    assert payload_bytes({"type": "directory"}) == 0


def test_uploads_above_the_limit_are_refused() -> None:
    big = {
        "type": "file",
        "format": "base64",
        "content": base64.b64encode(b"x" * (11 * MB)).decode(),
    }
    refusal = upload_refusal("in.bin", big, 0, LIMITS)
    assert refusal is not None and refusal.reason == "upload-size" and "vault" in refusal.message
    small = {"type": "file", "format": "text", "content": "a,b\n1,2\n"}
    assert upload_refusal("in.csv", small, 0, LIMITS) is None


def test_chunked_uploads_count_what_earlier_chunks_wrote() -> None:
    chunk = {"type": "file", "format": "base64", "content": base64.b64encode(b"x" * MB).decode()}
    assert upload_refusal("f", {**chunk, "chunk": 1}, 50 * MB, LIMITS) is None  # first: new file
    assert upload_refusal("f", {**chunk, "chunk": 5}, 8 * MB, LIMITS) is None
    assert upload_refusal("f", {**chunk, "chunk": 11}, 10 * MB, LIMITS) is not None
    assert upload_refusal("f", {**chunk, "chunk": -1}, 10 * MB, LIMITS) is not None


def test_export_request_body_keeps_only_what_the_api_needs() -> None:
    body = export_request_body(
        {
            "title": " Table 2 ",
            "project": "someone-elses",
            "files": [{"path": "outputs/t.csv", "justification": "needed", "extra": 1}],
        }
    )
    assert body == {
        "title": "Table 2",
        "files": [{"path": "outputs/t.csv", "justification": "needed"}],
        "submit": True,
    }


@pytest.mark.parametrize(
    "raw",
    [
        None,
        {"title": "", "files": [{"path": "a", "justification": "b"}]},
        {"title": "t", "files": []},
        {"title": "t", "files": [{"path": "/data/x", "justification": "b"}]},
        {"title": "t", "files": [{"path": "../x", "justification": "b"}]},
        {"title": "t", "files": [{"path": "a", "justification": " "}]},
        {"title": "t", "files": [{"path": "a", "justification": "b"}], "submit": "yes"},
    ],
)
def test_export_request_body_refuses(raw: object) -> None:
    with pytest.raises(RequestBodyError):
        export_request_body(raw)
