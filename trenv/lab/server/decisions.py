"""What the lab's lock-down allows: pure decisions, no Jupyter, no I/O.

Each function returns ``None`` when the request may go on, else the refusal that the
researcher sees (a :class:`Refusal`, answered with 403). The tornado side
(:mod:`trenv.lab.server.guards`) gathers the facts (the path as resolved on disk, its size,
its first bytes, the content the contents manager read) and applies these decisions, so the
unit tests can cover every rule without a server. What a file's bytes are is judged by
:mod:`trenv.judge.files`, never by its name.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from trenv.judge.files import FileLimits, FileVerdict, judge_head
from trenv.judge.text import TextLimits

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


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused; ``message`` is what the researcher reads."""

    reason: str  # a short key: download, data-read, upload-size, upload-day, egress-stopped
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
    # What one output may show (the policy's egress.output_max_*); a whole file shows no more.
    output: TextLimits = field(default_factory=TextLimits)

    def files(self) -> FileLimits:
        """The output limits applied to a whole file read through the contents API."""
        return FileLimits(
            max_read_bytes=self.max_raw_read_bytes,
            max_table_rows=self.output.max_table_rows,
            max_blob_chars=self.output.max_blob_chars,
            max_pseudonyms=self.output.max_pseudonyms,
            max_image_extra_bytes=self.output.max_blob_chars,
        )


@dataclass(frozen=True)
class FileFacts:
    """What the server found on disk for a contents path (after following symlinks)."""

    resolved: str  # absolute, symlinks resolved (os.path.realpath)
    exists: bool
    is_dir: bool
    size: int
    head: bytes = b""  # the first HEAD_BYTES bytes of a regular file


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


def wants_content(query: Mapping[str, Sequence[str]]) -> bool:
    """The contents API returns a file's content unless ``content=0`` (its default is 1)."""
    values = query.get("content", ["1"])
    return not values or values[-1].strip() not in ("0", "false")


def reads_notebook(path: str, query: Mapping[str, Sequence[str]]) -> bool:
    """Will the contents manager answer with a notebook model (not the file's text)?"""
    kind = (query.get("type") or [""])[-1]
    return kind == "notebook" or (kind == "" and path.lower().endswith(".ipynb"))


def raw_read_refusal(
    path: str, facts: FileFacts, query: Mapping[str, Sequence[str]], limits: Limits
) -> Refusal | None:
    """What can be refused before a file is read: anything under the data roots, and a file
    whose first bytes name a data format or that is too large to show. Directory listings
    and metadata-only reads stay allowed; notebooks are judged on their model.

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
    if reads_notebook(path, query):
        return None
    verdict = judge_head(facts.head, facts.size, limits.files())
    return content_refusal(path, verdict) if verdict is not None else None


def content_refusal(path: str, verdict: FileVerdict) -> Refusal | None:
    """The refusal of a file judged by its content (trenv.judge.files), None when shown."""
    if verdict.shown:
        return None
    name = path.strip("/")
    if verdict.kind == "too-large":
        return Refusal(
            "data-read",
            f"{name} is {verdict.what}. Look at it in a notebook instead (for example its "
            f"first lines, or a summary). {EXPORT_HINT}",
        )
    return Refusal(
        "data-read",
        f"{name} looks like {verdict.what}, whatever its name, so it is not opened in the "
        "browser. Analyse it in a notebook (read it with pandas and look at a few rows or "
        f"at aggregates). {EXPORT_HINT}",
    )


def notebook_refusal(path: str, why: str) -> Refusal:
    """A notebook whose content (not its outputs) holds data, or one read as a plain file
    whose outputs would be withheld in the notebook view."""
    return Refusal(
        "data-read",
        f"{path.strip('/')}: {why} Open it as a notebook, where outputs above the limits "
        f"are withheld, and keep data in data files that notebooks read. {EXPORT_HINT}",
    )


def stopped_refusal(message: str) -> Refusal:
    """A read refused because this hour's output to the browser is used up (the meter)."""
    return Refusal("egress-stopped", message)


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
