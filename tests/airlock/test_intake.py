"""Refusals of the airlock's intake: every way a workspace file could escape or smuggle."""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import time
import zipfile
import zlib
from pathlib import Path

import nbformat
import pytest

from trenv.airlock.intake import (
    IntakeLimits,
    check_paths,
    check_request_size,
    normalise_path,
    read_request_files,
    read_sidecar,
    read_workspace_file,
    sidecar_paths,
)
from trenv.errors import Invalid

PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "work"
    (root / "outputs").mkdir(parents=True)
    (root / "outputs" / "t.csv").write_text("region,n\nnorth,12\nsouth,15\n")
    return root


def refused(ws: Path, rel: str, *needles: str, limits: IntakeLimits = IntakeLimits()) -> Invalid:
    with pytest.raises(Invalid) as info:
        read_workspace_file(ws, rel, limits)
    err = info.value
    assert err.fix, "every refusal tells the researcher what to do"
    for needle in needles:
        assert needle in err.problem, err.problem
    return err


def test_reads_a_plain_csv(ws: Path) -> None:
    f = read_workspace_file(ws, "./outputs//t.csv")
    assert f.path == "outputs/t.csv"
    assert f.kind == "table" and f.media_type == "text/csv"
    assert f.data == b"region,n\nnorth,12\nsouth,15\n" and f.size == len(f.data)
    import hashlib

    assert f.sha256 == hashlib.sha256(f.data).hexdigest()


@pytest.mark.parametrize(
    ("rel", "needle"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("/etc/passwd", "absolute"),
        ("../secret.csv", "'..'"),
        ("outputs/../../x.csv", "'..'"),
        ("outputs\\t.csv", "backslash"),
        ("outputs/t\x00.csv", "NUL"),
        ("outputs/t\n.csv", "control"),
        (".ipynb_checkpoints/a.ipynb", "hidden"),
        ("outputs/.secret.csv", "hidden"),
        (".", "names no file"),
    ],
)
def test_unsafe_paths_are_refused(ws: Path, rel: str, needle: str) -> None:
    refused(ws, rel, needle)


def test_symlink_to_a_file_outside_is_refused(ws: Path, tmp_path: Path) -> None:
    secret = tmp_path / "data" / "people.csv"
    secret.parent.mkdir()
    secret.write_text("pseudonym,age\nabc,42\n")
    os.symlink(secret, ws / "outputs" / "leak.csv")
    err = refused(ws, "outputs/leak.csv", "outputs/leak.csv is a symbolic link")
    assert "copy" in (err.fix or "")


def test_symlink_inside_the_workspace_is_refused_too(ws: Path) -> None:
    os.symlink("t.csv", ws / "outputs" / "alias.csv")
    refused(ws, "outputs/alias.csv", "symbolic link")


def test_symlinked_directory_component_is_refused(ws: Path, tmp_path: Path) -> None:
    outside = tmp_path / "data"
    outside.mkdir()
    (outside / "people.csv").write_text("a,b\n1,2\n")
    os.symlink(outside, ws / "linked")
    refused(ws, "linked/people.csv", "linked is a symbolic link")
    # Also deeper down.
    os.symlink(outside, ws / "outputs" / "sub")
    refused(ws, "outputs/sub/people.csv", "outputs/sub is a symbolic link")


def test_symlink_swapped_in_after_the_path_check_is_not_followed(ws: Path, tmp_path: Path) -> None:
    """Race a writer that keeps swapping a directory for a symlink: every read either
    returns the workspace file or is refused, never the outside file."""
    outside = tmp_path / "data"
    outside.mkdir()
    (outside / "x.csv").write_text("secret,1\n")
    inner = ws / "race"
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            try:
                os.symlink(outside, inner)
                os.unlink(inner)
                inner.mkdir()
                (inner / "x.csv").write_text("safe,1\n")
                (inner / "x.csv").unlink()
                inner.rmdir()
            except OSError:
                pass

    thread = threading.Thread(target=swap, daemon=True)
    thread.start()
    try:
        for _ in range(300):
            try:
                f = read_workspace_file(ws, "race/x.csv")
            except Invalid:
                continue
            assert b"secret" not in f.data
    finally:
        stop.set()
        thread.join()


def test_directory_is_refused(ws: Path) -> None:
    (ws / "outputs" / "dir.csv").mkdir()
    refused(ws, "outputs/dir.csv", "is a folder")


def test_fifo_is_refused_promptly(ws: Path) -> None:
    os.mkfifo(ws / "outputs" / "pipe.csv")
    start = time.monotonic()
    refused(ws, "outputs/pipe.csv", "fifo")
    assert time.monotonic() - start < 2


def test_socket_is_refused(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    # Bound by a relative name: AF_UNIX paths are limited to about 100 bytes.
    monkeypatch.chdir(ws / "outputs")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind("s.csv")
        refused(ws, "outputs/s.csv", "socket")
    finally:
        sock.close()


def test_device_via_symlink_is_refused_by_the_no_link_rule(ws: Path) -> None:
    os.symlink("/dev/null", ws / "outputs" / "null.csv")
    refused(ws, "outputs/null.csv", "symbolic link")
    os.symlink("/dev", ws / "devdir")
    refused(ws, "devdir/null.csv", "devdir is a symbolic link")


def test_char_device_is_refused(ws: Path) -> None:
    # make test runs as root (it installs Debian packages), so a device node can be made.
    import stat

    os.mknod(ws / "outputs" / "null.csv", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    refused(ws, "outputs/null.csv", "device")


def test_hard_link_is_refused(ws: Path) -> None:
    os.link(ws / "outputs" / "t.csv", ws / "outputs" / "t2.csv")
    refused(ws, "outputs/t2.csv", "hard links")


def test_missing_file(ws: Path) -> None:
    refused(ws, "outputs/nope.csv", "does not exist")
    refused(ws, "nope/t.csv", "does not exist")


def test_oversized_file_is_refused(ws: Path) -> None:
    (ws / "big.txt").write_bytes(b"a" * 1001)
    refused(ws, "big.txt", "larger than the limit", limits=IntakeLimits(max_file_bytes=1000))
    (ws / "ok.txt").write_bytes(b"a" * 1000)
    assert read_workspace_file(ws, "ok.txt", IntakeLimits(max_file_bytes=1000)).size == 1000


@pytest.mark.parametrize(
    "name", ["data.parquet", "x.json", "model.pkl", "archive.zip", "noext", "a.xlsm", "a.html"]
)
def test_disallowed_extension_is_refused(ws: Path, name: str) -> None:
    (ws / name).write_bytes(b"whatever")
    refused(ws, name, "cannot leave the TRE")


def test_sidecars_are_not_export_files(ws: Path) -> None:
    (ws / "outputs" / "t.record.json").write_text("{}")
    (ws / "outputs" / "t.dp.json").write_text("{}")
    refused(ws, "outputs/t.record.json", "record")
    refused(ws, "outputs/t.dp.json", "record")
    assert read_sidecar(ws, "outputs/t.record.json") == b"{}"
    assert read_sidecar(ws, "outputs/none.record.json") is None
    with pytest.raises(Invalid):
        read_sidecar(ws, "outputs/t.csv")


def test_sidecar_reader_refuses_symlinks(ws: Path, tmp_path: Path) -> None:
    (tmp_path / "fake.json").write_text("{}")
    os.symlink(tmp_path / "fake.json", ws / "outputs" / "x.record.json")
    with pytest.raises(Invalid, match="symbolic link"):
        read_sidecar(ws, "outputs/x.record.json")


def test_sidecar_paths() -> None:
    assert sidecar_paths("outputs/x.csv") == {
        "record": "outputs/x.record.json",
        "dp": "outputs/x.dp.json",
    }
    assert sidecar_paths("f.png")["record"] == "f.record.json"
    with pytest.raises(Invalid):
        sidecar_paths("../x.csv")


def test_png_that_is_really_a_csv_is_refused(ws: Path) -> None:
    (ws / "fig.png").write_text("a,b\n1,2\n")
    refused(ws, "fig.png", "not a PNG")


def test_png_with_data_after_the_end_is_refused(ws: Path) -> None:
    (ws / "ok.png").write_bytes(PNG_1PX)
    assert read_workspace_file(ws, "ok.png").kind == "figure"
    (ws / "smuggle.png").write_bytes(PNG_1PX + b"pseudonym,age\nabc,42\n")
    refused(ws, "smuggle.png", "after the end")


def test_csv_must_be_utf8_text(ws: Path) -> None:
    (ws / "bin.csv").write_bytes(b"\xff\xfe\x00\x01")
    refused(ws, "bin.csv", "not UTF-8")
    (ws / "nul.csv").write_bytes(b"a,b\n1,\x002\n")
    refused(ws, "nul.csv", "NUL")
    (ws / "nul.txt").write_bytes(b"hello\x00")
    refused(ws, "nul.txt", "NUL")


def test_text_and_markdown(ws: Path) -> None:
    (ws / "notes.md").write_text("# Results\n\nAll good.\n")
    (ws / "notes.txt").write_text("plain\n")
    assert read_workspace_file(ws, "notes.md").kind == "document"
    assert read_workspace_file(ws, "notes.txt").kind == "text"


def _pdf(body: bytes) -> bytes:
    return b"%PDF-1.4\n1 0 obj\n" + body + b"\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def test_pdf(ws: Path) -> None:
    (ws / "fig.pdf").write_bytes(_pdf(b"<< /Type /Catalog >>"))
    assert read_workspace_file(ws, "fig.pdf").media_type == "application/pdf"
    (ws / "notpdf.pdf").write_bytes(b"hello")
    refused(ws, "notpdf.pdf", "not a PDF")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"<< /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>", "JavaScript"),
        (b"<< /S /J#61vaScript /JS (x) >>", "JavaScript"),
        (b"<< /Names << /EmbeddedFiles 2 0 R >> >>", "embedded files"),
        (b"<< /S /Launch /F (calc.exe) >>", "launches"),
    ],
)
def test_pdf_with_active_content_is_refused(ws: Path, body: bytes, needle: str) -> None:
    (ws / "bad.pdf").write_bytes(_pdf(body))
    refused(ws, "bad.pdf", needle)


def test_pdf_with_javascript_in_a_compressed_object_stream_is_refused(ws: Path) -> None:
    hidden = zlib.compress(b"<< /S /JavaScript /JS (app.alert(1)) >>")
    body = (
        b"<< /Type /ObjStm /Filter /FlateDecode /Length "
        + str(len(hidden)).encode()
        + b" >>\nstream\n"
        + hidden
        + b"\nendstream"
    )
    (ws / "bad.pdf").write_bytes(_pdf(body))
    refused(ws, "bad.pdf", "JavaScript")


def _xlsx(extra: dict[str, bytes] | None = None, *, plain: bool = True) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws_ = wb.active
    assert ws_ is not None
    ws_.append(["region", "n"])
    ws_.append(["north", 12])
    buf = io.BytesIO()
    wb.save(buf)
    if not extra:
        return buf.getvalue()
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        for name, data in extra.items():
            dst.writestr(name, data)
    return out.getvalue()


def test_plain_xlsx_is_accepted(ws: Path) -> None:
    (ws / "t.xlsx").write_bytes(_xlsx())
    assert read_workspace_file(ws, "t.xlsx").kind == "spreadsheet"


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0macro"}, "macros"),
        ({"xl/externalLinks/externalLink1.xml": b"<x/>"}, "links to other workbooks"),
        ({"xl/embeddings/oleObject1.bin": b"\xd0\xcf"}, "embedded"),
    ],
)
def test_xlsx_with_macros_links_or_objects_is_refused(
    ws: Path, extra: dict[str, bytes], needle: str
) -> None:
    (ws / "bad.xlsx").write_bytes(_xlsx(extra))
    refused(ws, "bad.xlsx", needle)


def test_xlsx_that_is_not_a_workbook_is_refused(ws: Path) -> None:
    (ws / "a.xlsx").write_text("a,b\n")
    refused(ws, "a.xlsx", "not an Excel workbook")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("data.csv", "a,b\n")
    (ws / "b.xlsx").write_bytes(out.getvalue())
    refused(ws, "b.xlsx", "not an Excel workbook")


def _notebook(outputs: list[dict] | None = None, attachments: dict | None = None) -> str:
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell(
        "x = 1", outputs=[nbformat.from_dict(o) for o in outputs or []]
    )
    md = nbformat.v4.new_markdown_cell("![img](attachment:a.png)")
    if attachments is not None:
        md["attachments"] = attachments
    nb.cells = [md, code]
    return nbformat.writes(nb)


def test_valid_notebook_is_accepted(ws: Path) -> None:
    png = base64.b64encode(PNG_1PX).decode()
    text = _notebook(
        [
            {"output_type": "display_data", "data": {"image/png": png}, "metadata": {}},
            {"output_type": "stream", "name": "stdout", "text": "hello\n"},
        ],
        {"a.png": {"image/png": png}},
    )
    (ws / "nb.ipynb").write_text(text)
    assert read_workspace_file(ws, "nb.ipynb").kind == "notebook"


@pytest.mark.parametrize(
    "mime",
    [
        "application/octet-stream",
        "application/vnd.apache.parquet",
        "application/x-parquet",
        "application/vnd.plotly.v1+json",
        "application/json",
    ],
)
def test_notebook_with_a_data_file_output_is_refused(ws: Path, mime: str) -> None:
    payload = base64.b64encode(b"PAR1....").decode()
    text = _notebook([{"output_type": "display_data", "data": {mime: payload}, "metadata": {}}])
    (ws / "nb.ipynb").write_text(text)
    err = refused(ws, "nb.ipynb", mime, "cell 1")
    assert "clear" in (err.fix or "")


def test_notebook_with_a_non_image_attachment_is_refused(ws: Path) -> None:
    csv_b64 = base64.b64encode(b"pseudonym,age\n").decode()
    (ws / "nb.ipynb").write_text(_notebook(attachments={"a.csv": {"text/csv": csv_b64}}))
    refused(ws, "nb.ipynb", "attachment", "text/csv")
    # An "image" attachment that is really a CSV.
    (ws / "nb2.ipynb").write_text(_notebook(attachments={"a.png": {"image/png": csv_b64}}))
    refused(ws, "nb2.ipynb", "not a image/png")


def test_image_output_that_is_not_an_image_is_refused(ws: Path) -> None:
    fake = base64.b64encode(b"pseudonym,age\nabc,1\n").decode()
    text = _notebook([{"output_type": "display_data", "data": {"image/png": fake}, "metadata": {}}])
    (ws / "nb.ipynb").write_text(text)
    refused(ws, "nb.ipynb", "not a image/png")


def test_invalid_notebooks_are_refused(ws: Path) -> None:
    (ws / "a.ipynb").write_text("not json")
    refused(ws, "a.ipynb", "not a valid Jupyter notebook")
    (ws / "b.ipynb").write_text(json.dumps({"nbformat": 3, "worksheets": []}))
    refused(ws, "b.ipynb", "not a valid Jupyter notebook")
    (ws / "c.ipynb").write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "cells": 7}))
    refused(ws, "c.ipynb", "not a valid Jupyter notebook")


def test_normalise_path() -> None:
    assert normalise_path("outputs/./t.csv") == "outputs/t.csv"
    assert normalise_path("a//b/c.csv") == "a/b/c.csv"


def test_request_paths_limits_and_duplicates(ws: Path) -> None:
    limits = IntakeLimits(max_files=2, max_request_bytes=60)
    assert check_paths(["outputs/t.csv", "a.txt"], limits) == ["outputs/t.csv", "a.txt"]
    with pytest.raises(Invalid, match="at most 2"):
        check_paths(["a.csv", "b.csv", "c.csv"], limits)
    with pytest.raises(Invalid, match="named twice"):
        check_paths(["outputs/t.csv", "./outputs//t.csv"], limits)
    with pytest.raises(Invalid, match="no files"):
        check_paths([], limits)
    with pytest.raises(Invalid, match="cannot leave"):
        check_paths(["x.exe"], limits)
    (ws / "b.txt").write_text("x" * 40)
    with pytest.raises(Invalid, match="together are larger"):
        read_request_files(ws, ["outputs/t.csv", "b.txt"], limits)
    files = read_request_files(ws, ["outputs/t.csv"], limits)
    assert [f.path for f in files] == ["outputs/t.csv"]
    check_request_size(files, limits)
    with pytest.raises(Invalid, match="together are larger"):
        check_request_size(files * 3, IntakeLimits(max_request_bytes=60))
