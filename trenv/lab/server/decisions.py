"""What the lab's lock-down allows: pure decisions, no Jupyter, no I/O.

Each function returns ``None`` when the request may go on, else the refusal that the
researcher sees (a :class:`Refusal`, answered with 403). The tornado side
(:mod:`trenv.lab.server.guards`) gathers the facts (the path as resolved on disk, its size,
its first bytes) and applies these decisions, so the unit tests can cover every rule without
a server.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

MB = 1024 * 1024
EXPORT_HINT = (
    "Outputs leave the research environment only through the airlock: save the output with "
    "tre.save(output, name) and ask for its release in the Outputs panel (left side bar), "
    "where output checkers review it."
)
# Server paths (below the server's base URL) that only ever hand files to the browser.
DOWNLOAD_PREFIXES: tuple[str, ...] = ("files/", "view/", "nbconvert/")
# ?download=<value> turns any handler into a download; these values leave it off.
_NOT_DOWNLOAD = {"", "0", "false", "no", "off"}
# Suffixes of data files: tabular, statistical, database and archive formats (lower case).
DATA_SUFFIXES: frozenset[str] = frozenset(
    {
        ".parquet", ".pq", ".csv", ".tsv", ".tab", ".psv", ".xlsx", ".xlsm", ".xls", ".ods",
        ".feather", ".arrow", ".ipc", ".orc", ".avro", ".sqlite", ".sqlite3", ".db",
        ".duckdb", ".sav", ".zsav", ".dta", ".sas7bdat", ".xpt", ".rds", ".rdata", ".rda",
        ".pkl", ".pickle", ".h5", ".hdf5", ".npy", ".npz", ".jsonl", ".ndjson", ".zip",
        ".gz", ".bz2", ".xz", ".zst", ".7z", ".tar",
    }
)  # fmt: skip
# First bytes of binary data formats: a parquet file renamed to notes.txt is still data.
DATA_MAGIC: tuple[tuple[int, bytes], ...] = (
    (0, b"PAR1"),  # parquet
    (0, b"SQLite format 3\x00"),
    (0, b"ARROW1"),  # feather v2 / arrow IPC file
    (0, b"PK\x03\x04"),  # zip, xlsx, ods
    (0, b"\xd0\xcf\x11\xe0"),  # OLE: xls, old SPSS/Stata exports
    (0, b"\x1f\x8b"),  # gzip
    (0, b"BZh"),
    (0, b"\xfd7zXZ\x00"),
    (0, b"\x28\xb5\x2f\xfd"),  # zstd
    (0, b"7z\xbc\xaf\x27\x1c"),
    (0, b"\x89HDF"),
    (0, b"ORC"),
    (0, b"Obj\x01"),  # avro
    (0, b"\x93NUMPY"),
    (8, b"DUCK"),  # duckdb: the magic follows an 8-byte checksum
)
MAGIC_BYTES = 16  # how much of a file the magic check reads


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused; ``message`` is what the researcher reads."""

    reason: str  # a short machine-readable key: download, data-read, upload-size
    message: str

    def body(self) -> dict[str, str]:
        return {"message": self.message, "reason": self.reason, "export": EXPORT_HINT}


@dataclass(frozen=True)
class Limits:
    """The lock-down's parameters (from the project's policy, see trenv.lab.server.config)."""

    data_roots: tuple[str, ...] = ("/data",)
    max_raw_read_bytes: int = 1 * MB
    max_upload_bytes: int = 10 * MB
    copy_limit_chars: int = 500
    data_suffixes: frozenset[str] = DATA_SUFFIXES


@dataclass(frozen=True)
class FileFacts:
    """What the server found on disk for a contents path (after following symlinks)."""

    resolved: str  # absolute, symlinks resolved (os.path.realpath)
    exists: bool
    is_dir: bool
    size: int
    head: bytes = b""  # the first MAGIC_BYTES bytes of a regular file


def relative_to_base(path: str, base_url: str) -> str | None:
    """``path`` below the server's ``base_url`` (no leading slash); None when outside it."""
    base = "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"
    if path == base.rstrip("/"):
        return ""
    if not path.startswith(base):
        return None
    return path[len(base) :]


def wants_download(query: Mapping[str, Sequence[str]]) -> bool:
    """Does the query string ask for the response as a download (``?download=1``)?"""
    return any(v.strip().lower() not in _NOT_DOWNLOAD for v in query.get("download", []))


def download_refusal(relative_path: str, query: Mapping[str, Sequence[str]]) -> Refusal | None:
    """Refuse the handlers that exist to hand files to the browser, and any ``?download``."""
    # Normalise the way tornado's router will: '//files/x' and '/./files' are the same route.
    parts = [p for p in relative_path.split("/") if p not in ("", ".")]
    normalised = "/".join(parts) + ("/" if relative_path.endswith("/") or not parts else "")
    if any((normalised + "/").startswith(p) for p in DOWNLOAD_PREFIXES) or wants_download(query):
        return Refusal(
            "download",
            "Downloading files from the research environment is switched off. " + EXPORT_HINT,
        )
    return None


def is_under(path: str, roots: Iterable[str]) -> bool:
    """Is the absolute ``path`` one of ``roots`` or inside one (by path components)?"""
    p = PurePosixPath(path)
    return any(p == PurePosixPath(r) or PurePosixPath(r) in p.parents for r in roots)


def looks_like_data(name: str, head: bytes, suffixes: frozenset[str]) -> bool:
    """A data file by its suffix (any of a compound one like .csv.gz) or its first bytes."""
    lowered = PurePosixPath(name.lower())
    if any(s in suffixes for s in lowered.suffixes):
        return True
    return any(head[at : at + len(magic)] == magic for at, magic in DATA_MAGIC)


def wants_content(query: Mapping[str, Sequence[str]]) -> bool:
    """The contents API returns a file's content unless ``content=0`` (its default is 1)."""
    values = query.get("content", ["1"])
    return not values or values[-1].strip() not in ("0", "false")


def raw_read_refusal(
    path: str, facts: FileFacts, query: Mapping[str, Sequence[str]], limits: Limits
) -> Refusal | None:
    """Refuse a contents-API read of a file's bytes under the data roots or, for data files,
    above the size limit. Directory listings and metadata-only reads stay allowed.

    ``path`` is the contents path as asked; ``facts.resolved`` is where it leads, so a
    symlink from the workspace into /data is judged by its target.
    """
    if not facts.exists or facts.is_dir or not wants_content(query):
        return None
    if is_under(facts.resolved, limits.data_roots):
        return Refusal(
            "data-read",
            f"{path.strip('/')} is (or points to) the project's data under "
            f"{', '.join(limits.data_roots)}; it can be analysed in a notebook, not opened "
            f"or downloaded in the browser. {EXPORT_HINT}",
        )
    # Judge by the name asked for, the name it leads to and the bytes themselves.
    is_data = looks_like_data(path, facts.head, limits.data_suffixes) or looks_like_data(
        facts.resolved, b"", limits.data_suffixes
    )
    if is_data and facts.size > limits.max_raw_read_bytes:
        return Refusal(
            "data-read",
            f"{path.strip('/')} is a data file of {facts.size / MB:.1f} MB; the browser may "
            f"read data files up to {limits.max_raw_read_bytes / MB:g} MB. Analyse it in a "
            f"notebook. {EXPORT_HINT}",
        )
    return None


def payload_bytes(model: Mapping[str, Any]) -> int:
    """The size on disk of the content in a contents-API PUT body (0 without content)."""
    content = model.get("content")
    if content is None:
        return 0
    if model.get("type") == "notebook" or not isinstance(content, str):
        return len(json.dumps(content, ensure_ascii=False).encode("utf-8"))
    if model.get("format") == "base64":
        try:
            return len(base64.b64decode(content.encode("ascii"), validate=False))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            return len(content)  # not base64: the manager refuses it anyway; count raw
    return len(content.encode("utf-8"))


def upload_refusal(
    path: str, model: Mapping[str, Any], existing_bytes: int, limits: Limits
) -> Refusal | None:
    """Refuse a save or upload whose file would exceed the upload limit.

    A chunked upload (JupyterLab sends files over 1 MB in chunks: ``chunk`` 1, 2, ..., -1)
    appends to the file, so later chunks count what the earlier ones wrote.
    """
    size = payload_bytes(model)
    if size == 0:
        return None
    chunk = model.get("chunk")
    appending = isinstance(chunk, int) and chunk not in (0, 1)
    total = size + (existing_bytes if appending else 0)
    if total <= limits.max_upload_bytes:
        return None
    return Refusal(
        "upload-size",
        f"{path.strip('/')}: uploads and saves are limited to {limits.max_upload_bytes / MB:g} MB "
        f"in this project (this one would be {total / MB:.1f} MB). Data comes into the "
        "research environment through the data stewards (the vault), not through the browser.",
    )
