"""Reading the files a researcher names from their workspace, safely, at submission.

The workspace is written by untrusted code, so a path is never resolved by the kernel in one
go: it is opened one component at a time relative to the previous directory's descriptor
with ``O_NOFOLLOW``, so a symbolic link anywhere (also one swapped in between a check and the
read) is refused instead of followed out of the workspace (to ``/data``, say). The last
component is opened with ``O_NONBLOCK`` so that a fifo cannot hang the server, and the type
and size are taken from ``fstat`` of that same descriptor. At most ``limit + 1`` bytes are
read, so a file growing while it is read cannot slip past the size limit.

The bytes are then checked against an allow-list of types whose content must match the
extension (a ``.png`` that is really a CSV is refused), and types that can carry hidden data
or active content (macros, embedded files, JavaScript, data-file notebook outputs) are
refused with a reason the researcher can act on. An image is frozen as a fresh PNG of its
pixels, so that nothing invisible in it (text chunks, Exif, private chunks) is ever stored,
shown or released.
"""

from __future__ import annotations

import base64
import binascii
import csv
import errno
import hashlib
import io
import json
import os
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trenv.errors import Invalid
from trenv.judge.image import DEFAULT_MAX_PIXELS, ImageRefused, ImageTooLarge, ReencodedImage
from trenv.judge.image import reencode_png as _reencode_png

RECORD_SUFFIX = ".record.json"
DP_SUFFIX = ".dp.json"
SIDECAR_SUFFIXES = (RECORD_SUFFIX, DP_SUFFIX)
MAX_PATH_CHARS = 1024
MAX_NAME_CHARS = 255


@dataclass(frozen=True)
class IntakeLimits:
    max_file_bytes: int = 20 * 1024 * 1024
    max_files: int = 50
    max_request_bytes: int = 100 * 1024 * 1024
    # Decoding a PNG allocates width x height pixels whatever its file size: a bomb limit.
    max_image_pixels: int = DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class FrozenFile:
    """The bytes of one requested file as frozen at submission: exactly as read, except
    images, which are re-encoded from their pixels (see :func:`reencode_image`)."""

    path: str  # normalised relative POSIX path inside the workspace
    data: bytes
    sha256: str
    size: int
    media_type: str
    kind: str  # "table" | "spreadsheet" | "figure" | "document" | "text" | "notebook"
    # For a re-encoded image: the sha256 of the bytes as read, and what the re-encoding did.
    source_sha256: str = ""
    reencoded: ReencodedImage | None = None

    @property
    def read_sha256(self) -> str:
        """The sha256 of the file as the researcher wrote it (what tre.save recorded)."""
        return self.source_sha256 or self.sha256


@dataclass(frozen=True)
class FileType:
    kind: str
    media_type: str


ALLOWED_TYPES: dict[str, FileType] = {
    ".csv": FileType("table", "text/csv"),
    ".xlsx": FileType(
        "spreadsheet", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    ),
    ".png": FileType("figure", "image/png"),
    ".pdf": FileType("figure", "application/pdf"),
    ".txt": FileType("text", "text/plain"),
    ".md": FileType("document", "text/markdown"),
    ".ipynb": FileType("notebook", "application/x-ipynb+json"),
}

_ALLOWED_LIST = ", ".join(sorted(ALLOWED_TYPES))
# Images are frozen as a fresh encoding of their pixels (PDF figures are checked instead).
REENCODED_TYPES = frozenset({"image/png"})


class MissingFile(Invalid):
    """The named file (or a folder on its path) does not exist."""


def _refuse(problem: str, fix: str) -> Invalid:
    return Invalid(problem, fix)


# --- paths -------------------------------------------------------------------------------


def normalise_path(rel_path: str) -> str:
    """The relative POSIX form of ``rel_path``, or :class:`Invalid` if it could leave the
    workspace or names a hidden file.

    Nothing is resolved here: this only rejects paths that are unsafe whatever the file
    system looks like. Empty and ``.`` components are dropped; ``..`` is refused rather than
    collapsed, because a researcher has no reason to write it.
    """
    fix_rel = "give the path relative to your workspace, e.g. outputs/table.csv"
    if not isinstance(rel_path, str) or not rel_path.strip():
        raise _refuse("The file path is empty.", fix_rel)
    shown = rel_path.encode("unicode_escape").decode("ascii")
    if len(rel_path) > MAX_PATH_CHARS:
        raise _refuse(f"The file path is longer than {MAX_PATH_CHARS} characters.", fix_rel)
    if "\x00" in rel_path:
        raise _refuse(f"The file path {shown} contains a NUL character.", fix_rel)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in rel_path):
        raise _refuse(
            f"The file path {shown} contains control characters.",
            "rename the file using letters, digits, '-', '_' and '.'",
        )
    if "\\" in rel_path:
        raise _refuse(
            f"The file path {shown} contains a backslash.",
            "use '/' between folders, e.g. outputs/table.csv",
        )
    if rel_path.startswith("/"):
        raise _refuse(f"The file path {shown} is absolute.", fix_rel)
    parts = [p for p in rel_path.split("/") if p not in ("", ".")]
    if not parts:
        raise _refuse(f"The file path {shown} names no file.", fix_rel)
    if ".." in parts:
        raise _refuse(
            f"The file path {shown} contains '..' and could leave your workspace.",
            "name a file inside your workspace without '..'",
        )
    for part in parts:
        if part.startswith("."):
            raise _refuse(
                f"{shown} is or is inside a hidden file or folder ({part}).",
                "copy the file to a folder whose name does not start with '.', e.g. outputs/",
            )
        if len(part) > MAX_NAME_CHARS:
            raise _refuse(f"A name in {shown} is longer than {MAX_NAME_CHARS} characters.", fix_rel)
    return "/".join(parts)


def is_sidecar(path: str) -> bool:
    return path.lower().endswith(SIDECAR_SUFFIXES)


def sidecar_paths(rel_path: str) -> dict[str, str]:
    """Where ``tre.save`` put the output record and where a DP output's description lives
    for the file ``rel_path`` (``outputs/x.csv`` -> ``outputs/x.record.json``, ``...dp.json``).
    """
    path = normalise_path(rel_path)
    folder, _, name = path.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    prefix = f"{folder}/{stem}" if folder else stem
    return {"record": f"{prefix}{RECORD_SUFFIX}", "dp": f"{prefix}{DP_SUFFIX}"}


def file_type(path: str) -> FileType:
    """The allowed type of a normalised path, by extension, or :class:`Invalid`."""
    lower = path.lower()
    if is_sidecar(lower):
        raise _refuse(
            f"{path} is the record that trenv saved next to an output; it is not exported "
            "on its own.",
            "request the table, figure or DP result itself; the airlock reads its record",
        )
    ext = os.path.splitext(lower)[1]
    found = ALLOWED_TYPES.get(ext)
    if found is None:
        shown = f"of type {ext}" if ext else "without an extension"
        raise _refuse(
            f"{path}: files {shown} cannot leave the TRE.",
            f"export one of the allowed types ({_ALLOWED_LIST}); for example save a table "
            "as CSV with tre.save",
        )
    return found


# --- opening without following links -------------------------------------------------------


def _describe_mode(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (fifo)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


_FIX_LINK = "copy the file's content into a regular file in your workspace"
_FIX_KIND = "export a regular file from your workspace"


def _why_open_failed(err: OSError, shown: str, name: str, dir_fd: int, missing: str) -> Invalid:
    """Turn a failed ``openat`` into a researcher's reason. The ``lstat`` here only words
    the message; the refusal itself came from the kernel."""
    if err.errno == errno.ENOENT:
        return MissingFile(
            f"{missing} does not exist in your workspace.", "check the path and name"
        )
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except OSError:
        mode = None
    if (mode is not None and stat.S_ISLNK(mode)) or err.errno == errno.ELOOP:
        return _refuse(f"{shown} is a symbolic link.", _FIX_LINK)
    if err.errno == errno.ENOTDIR:
        return _refuse(f"{shown} is not a folder.", "check the path")
    if err.errno in (errno.EACCES, errno.EPERM):
        return _refuse(f"{shown} cannot be read.", "make the file readable and try again")
    return _refuse(f"{shown} cannot be opened ({os.strerror(err.errno or 0)}).", "check the path")


def _open_beneath(workspace: Path, path: str) -> int:
    """A read-only descriptor for the regular file ``path`` under ``workspace``, never
    following a symbolic link in any component."""
    parts = path.split("/")
    flags_dir = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    dir_fd = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, part in enumerate(parts[:-1]):
            shown = "/".join(parts[: i + 1])
            try:
                next_fd = os.open(part, flags_dir, dir_fd=dir_fd)
            except OSError as err:
                raise _why_open_failed(err, shown, part, dir_fd, path) from None
            os.close(dir_fd)
            dir_fd = next_fd
        name = parts[-1]
        # Refuse special files before opening them (opening some devices has side effects);
        # the fstat below re-checks the opened descriptor in case the name was swapped.
        try:
            pre = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as err:
            raise _why_open_failed(err, path, name, dir_fd, path) from None
        if not stat.S_ISREG(pre.st_mode):
            fix = _FIX_LINK if stat.S_ISLNK(pre.st_mode) else _FIX_KIND
            raise _refuse(f"{path} is {_describe_mode(pre.st_mode)}.", fix)
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        try:
            return os.open(name, flags, dir_fd=dir_fd)
        except OSError as err:
            raise _why_open_failed(err, path, name, dir_fd, path) from None
    finally:
        os.close(dir_fd)


def _read_fd(fd: int, path: str, max_bytes: int) -> bytes:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(f"{path} is {_describe_mode(st.st_mode)}.", _FIX_KIND)
    if st.st_nlink > 1:
        # A second hard link means the same bytes also live somewhere else, possibly
        # outside the folders the researcher is meant to export from.
        raise _refuse(f"{path} has other hard links.", "copy the file into a new, regular file")
    too_big = _refuse(
        f"{path} is larger than the limit of {_human(max_bytes)}.",
        "export a smaller file (fewer rows, a summary table, or a compressed figure)",
    )
    if st.st_size > max_bytes:
        raise too_big
    chunks: list[bytes] = []
    remaining = max_bytes + 1
    while remaining > 0:
        block = os.read(fd, min(remaining, 1 << 20))
        if not block:
            break
        chunks.append(block)
        remaining -= len(block)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise too_big
    return data


def _human(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    size = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:.3g} {unit}"


def _read_safely(workspace: Path, path: str, max_bytes: int) -> bytes:
    fd = _open_beneath(workspace, path)
    try:
        return _read_fd(fd, path, max_bytes)
    finally:
        os.close(fd)


# --- public API ----------------------------------------------------------------------------


def read_workspace_file(
    workspace: Path, rel_path: str, limits: IntakeLimits = IntakeLimits()
) -> FrozenFile:
    """Read and validate one file the researcher asked to export; :class:`Invalid` if it
    may not leave."""
    path = normalise_path(rel_path)
    ftype = file_type(path)
    data = _read_safely(Path(workspace), path, limits.max_file_bytes)
    validate_content(path, data)
    read_sha256 = hashlib.sha256(data).hexdigest()
    reencoded = None
    if ftype.media_type in REENCODED_TYPES:
        reencoded = reencode_image(path, data, limits.max_image_pixels)
        data = reencoded.data
    sha256 = hashlib.sha256(data).hexdigest()
    return FrozenFile(
        path=path,
        data=data,
        sha256=sha256,
        size=len(data),
        media_type=ftype.media_type,
        kind=ftype.kind,
        source_sha256=read_sha256 if reencoded is not None else "",
        reencoded=reencoded,
    )


def reencode_image(path: str, data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ReencodedImage:
    """A fresh PNG of the image's pixels: text, Exif, profile, animation and private chunks
    can hold any bytes and are invisible in a viewer, so none of them is frozen. Refused
    (:class:`Invalid`) if the pixels cannot be decoded or would be a decompression bomb."""
    try:
        return _reencode_png(data, max_pixels)
    except ImageTooLarge as exc:
        raise _refuse(
            f"{path} is {exc.width} x {exc.height} pixels, more than the limit of "
            f"{exc.limit:,} pixels (a decompression bomb, or a figure saved at a very high "
            "resolution).",
            "save the figure at a lower resolution, e.g. fig.savefig(path, dpi=150)",
        ) from None
    except ImageRefused as exc:
        raise _refuse(
            f"{path} cannot be decoded as an image: {exc}.",
            "save the figure again with savefig and export that file",
        ) from None


def read_sidecar(workspace: Path, rel_path: str, max_bytes: int = 16 * 1024 * 1024) -> bytes | None:
    """The bytes of an output record (``.record.json``) or DP output (``.dp.json``) next to
    a requested file, read with the same no-link rules; ``None`` if there is none."""
    path = normalise_path(rel_path)
    if not is_sidecar(path):
        raise _refuse(
            f"{path} is not an output record.",
            f"name a file ending in {RECORD_SUFFIX} or {DP_SUFFIX}",
        )
    try:
        return _read_safely(Path(workspace), path, max_bytes)
    except MissingFile:
        return None


def check_paths(paths: Sequence[str], limits: IntakeLimits = IntakeLimits()) -> list[str]:
    """Normalise the paths of one request; refuse an empty request, too many files and
    the same file named twice (also as ``./a`` and ``a``)."""
    if not paths:
        raise _refuse("The request names no files.", "add at least one file to the request")
    if len(paths) > limits.max_files:
        raise _refuse(
            f"The request names {len(paths)} files; at most {limits.max_files} are allowed.",
            "split the request into several smaller requests",
        )
    seen: set[str] = set()
    out: list[str] = []
    for raw in paths:
        path = normalise_path(raw)
        file_type(path)
        if path in seen:
            raise _refuse(f"{path} is named twice in the request.", "name each file once")
        seen.add(path)
        out.append(path)
    return out


def read_request_files(
    workspace: Path, paths: Sequence[str], limits: IntakeLimits = IntakeLimits()
) -> list[FrozenFile]:
    """Freeze every file of a request, refusing the whole request if one file is refused
    or all together exceed ``max_request_bytes``."""
    frozen: list[FrozenFile] = []
    total = 0
    for path in check_paths(paths, limits):
        f = read_workspace_file(workspace, path, limits)
        total += f.size
        if total > limits.max_request_bytes:
            raise _too_big_request(limits)
        frozen.append(f)
    return frozen


def check_request_size(files: Sequence[FrozenFile], limits: IntakeLimits = IntakeLimits()) -> None:
    """Refuse a request whose files together are over ``max_request_bytes`` or too many."""
    if len(files) > limits.max_files:
        raise _refuse(
            f"The request names {len(files)} files; at most {limits.max_files} are allowed.",
            "split the request into several smaller requests",
        )
    if sum(f.size for f in files) > limits.max_request_bytes:
        raise _too_big_request(limits)


def _too_big_request(limits: IntakeLimits) -> Invalid:
    return _refuse(
        f"The files of this request together are larger than {_human(limits.max_request_bytes)}.",
        "split the request into several smaller requests",
    )


# --- content -------------------------------------------------------------------------------


def validate_content(path: str, data: bytes) -> None:
    """Refuse bytes that do not match their extension or carry hidden or active content."""
    ext = os.path.splitext(path.lower())[1]
    validator = _VALIDATORS[ext]
    validator(path, data)


def _utf8_text(path: str, data: bytes, what: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse(
            f"{path} is not UTF-8 text, so it is not a {what}.",
            f"save it as UTF-8 {what}",
        ) from None
    if "\x00" in text:
        raise _refuse(
            f"{path} contains NUL bytes, so it is not a {what}.",
            f"save it as a plain UTF-8 {what}",
        )
    return text


def _validate_csv(path: str, data: bytes) -> None:
    text = _utf8_text(path, data, "CSV table")
    try:
        for _row in csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")):
            pass
    except csv.Error as exc:
        raise _refuse(
            f"{path} is not a readable CSV table ({exc}).", "save it with to_csv"
        ) from None


def _validate_text(path: str, data: bytes) -> None:
    _utf8_text(path, data, "text file")


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
GIF_MAGICS = (b"GIF87a", b"GIF89a")


def png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, payload) of each chunk of a PNG, checking lengths and CRCs; ``ValueError`` if
    the structure is broken."""
    if not data.startswith(PNG_MAGIC):
        raise ValueError("no PNG signature")
    pos = len(PNG_MAGIC)
    while True:
        if pos + 12 > len(data):
            raise ValueError("truncated chunk")
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        end = pos + 8 + length
        if end + 4 > len(data):
            raise ValueError("truncated chunk")
        payload = data[pos + 8 : end]
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(ctype + payload) & 0xFFFFFFFF != crc:
            raise ValueError(f"bad CRC in chunk {ctype!r}")
        yield ctype, payload
        pos = end + 4
        if ctype == b"IEND":
            if pos != len(data):
                raise ValueError("data after the end of the image")
            return


def _validate_png(path: str, data: bytes) -> None:
    if not data.startswith(PNG_MAGIC):
        raise _refuse(
            f"{path} is named .png but its content is not a PNG image.",
            "save the figure as PNG (fig.savefig('name.png')) or use the right extension",
        )
    try:
        types = [t for t, _ in png_chunks(data)]
    except ValueError as exc:
        # Bytes after IEND are invisible in every viewer: a classic way to smuggle data.
        raise _refuse(
            f"{path} is not a well-formed PNG image ({exc}).",
            "save the figure again with savefig and export that file",
        ) from None
    if not types or types[0] != b"IHDR":
        raise _refuse(f"{path} is not a well-formed PNG image.", "save the figure again")


# PDF features that run code, open other files or carry attachments.
_PDF_FORBIDDEN = {
    b"/JavaScript": "JavaScript",
    b"/JS": "JavaScript",
    b"/EmbeddedFile": "embedded files",
    b"/EmbeddedFiles": "embedded files",
    b"/Launch": "an action that launches programs",
    b"/RichMedia": "embedded media",
    b"/XFA": "an XFA form",
    b"/Encrypt": "encryption (its content cannot be checked)",
}
_PDF_NAME = re.compile(rb"/[^\s/<>\[\]()%{}]+")
_PDF_STREAM = re.compile(rb"stream\r?\n")
_PDF_HEX = re.compile(rb"#([0-9A-Fa-f]{2})")
_PDF_MAX_INFLATE = 64 * 1024 * 1024


def _pdf_names(blob: bytes) -> set[bytes]:
    # Names may be written with #xx escapes (/J#61vaScript); decode them before comparing.
    return {
        _PDF_HEX.sub(lambda m: bytes([int(m.group(1), 16)]), n) for n in _PDF_NAME.findall(blob)
    }


def _pdf_streams(data: bytes) -> Iterator[bytes]:
    """Inflated content of the Flate streams: object streams can hide dictionaries."""
    budget = _PDF_MAX_INFLATE
    for m in _PDF_STREAM.finditer(data):
        end = data.find(b"endstream", m.end())
        if end < 0:
            break
        raw = data[m.end() : end]
        try:
            inflated = zlib.decompressobj().decompress(raw, budget)
        except zlib.error:
            continue
        budget -= len(inflated)
        yield inflated
        if budget <= 0:
            return


def pdf_problems(data: bytes) -> list[str]:
    """What in a PDF makes it unsafe to release (empty if nothing)."""
    names = _pdf_names(data)
    for inflated in _pdf_streams(data):
        names |= _pdf_names(inflated)
    return sorted({why for key, why in _PDF_FORBIDDEN.items() if key in names})


def _validate_pdf(path: str, data: bytes) -> None:
    if not data.startswith(b"%PDF-"):
        raise _refuse(
            f"{path} is named .pdf but its content is not a PDF document.",
            "save the figure as PDF (fig.savefig('name.pdf')) or use the right extension",
        )
    problems = pdf_problems(data)
    if problems:
        raise _refuse(
            f"{path} contains {', '.join(problems)}, which cannot leave the TRE.",
            "export the figure as PNG, or save the PDF again without scripts or attachments",
        )


_XLSX_MAX_UNCOMPRESSED = 256 * 1024 * 1024
_XLSX_FORBIDDEN = (
    ("vbaproject.bin", "macros"),
    ("/externallinks/", "links to other workbooks"),
    ("/embeddings/", "embedded objects"),
    ("/activex/", "ActiveX controls"),
    ("oleobject", "embedded OLE objects"),
    ("/ctrlprops/", "form controls"),
)


def xlsx_problems(data: bytes) -> list[str]:
    """Why an .xlsx may not leave (empty if it is a plain workbook); ``ValueError`` if it
    is not a workbook at all."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError("not a zip archive") from exc
    with archive:
        infos = archive.infolist()
        names = {i.filename for i in infos}
        if "[Content_Types].xml" not in names or "xl/workbook.xml" not in names:
            raise ValueError("no workbook inside")
        problems: set[str] = set()
        total = 0
        for info in infos:
            lower = "/" + info.filename.lower()
            for needle, why in _XLSX_FORBIDDEN:
                if needle in lower:
                    problems.add(why)
            if info.flag_bits & 0x1:
                problems.add("encrypted parts")
            total += info.file_size
        if total > _XLSX_MAX_UNCOMPRESSED:
            problems.add("more content than can be checked (it unpacks to over 256 MiB)")
        types = archive.read("[Content_Types].xml").lower()
        if b"macroenabled" in types or b"vbaproject" in types:
            problems.add("macros")
        if b"externallink" in types:
            problems.add("links to other workbooks")
        if b"oleobject" in types or b"activex" in types:
            problems.add("embedded OLE objects")
    return sorted(problems)


def _validate_xlsx(path: str, data: bytes) -> None:
    try:
        problems = xlsx_problems(data)
    except ValueError as exc:
        raise _refuse(
            f"{path} is named .xlsx but is not an Excel workbook ({exc}).",
            "save the table as .xlsx from pandas (to_excel) or export it as CSV",
        ) from None
    except (zipfile.BadZipFile, KeyError, OSError, RuntimeError) as exc:
        raise _refuse(f"{path} is a damaged workbook ({exc}).", "save it again") from None
    if problems:
        raise _refuse(
            f"{path} contains {', '.join(problems)}, which cannot leave the TRE.",
            "export the table as CSV or save a plain workbook with only values",
        )


# Output and attachment types a notebook may carry; anything else (application/octet-stream,
# application/vnd.*, application/x-*, parquet, JSON data...) is a data file in disguise.
NOTEBOOK_OUTPUT_TYPES = frozenset(
    {
        "text/plain",
        "text/html",
        "text/markdown",
        "text/latex",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/svg+xml",
        "application/javascript",
    }
)
ATTACHMENT_TYPES = frozenset({"image/png", "image/jpeg", "image/gif"})
_IMAGE_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/png": (PNG_MAGIC,),
    "image/jpeg": (JPEG_MAGIC,),
    "image/gif": GIF_MAGICS,
}


def image_bytes(mime: str, payload: Any) -> bytes | None:
    """Decoded bytes of a base64 image in a notebook if they really are ``mime``."""
    if isinstance(payload, list):
        payload = "".join(str(p) for p in payload)
    if not isinstance(payload, str):
        return None
    try:
        raw = base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if raw.startswith(_IMAGE_MAGIC.get(mime, (b"\x00\x00\x00",))) else None


def notebook_problems(nb: dict[str, Any]) -> list[str]:
    """Why a (valid v4) notebook may not leave: data files in outputs or attachments."""
    problems: list[str] = []
    if "widgets" in (nb.get("metadata") or {}):
        problems.append("the notebook stores widget state, which can hold data")
    for index, cell in enumerate(nb.get("cells", [])):
        where = f"cell {index}"
        for name, bundle in (cell.get("attachments") or {}).items():
            for mime, payload in bundle.items():
                if mime not in ATTACHMENT_TYPES:
                    problems.append(f"{where} has an attachment {name!r} of type {mime}")
                elif image_bytes(mime, payload) is None:
                    problems.append(f"{where} has an attachment {name!r} that is not a {mime}")
        for output in cell.get("outputs", []) or []:
            for mime, payload in (output.get("data") or {}).items():
                if mime not in NOTEBOOK_OUTPUT_TYPES:
                    problems.append(f"{where} has an output of type {mime}")
                elif mime in _IMAGE_MAGIC and image_bytes(mime, payload) is None:
                    problems.append(f"{where} has an image output that is not a {mime}")
    return problems


def _validate_notebook(path: str, data: bytes) -> None:
    import nbformat

    text = _utf8_text(path, data, "notebook")
    bad = _refuse(
        f"{path} is not a valid Jupyter notebook (nbformat 4).",
        "save it from JupyterLab (File > Save) and try again",
    )
    try:
        raw = json.loads(text)
    except ValueError:
        raise bad from None
    if not isinstance(raw, dict) or raw.get("nbformat") != 4:
        raise bad
    try:
        nb = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
        nbformat.validate(nb)
    except Exception:  # nbformat raises several unrelated types for broken notebooks
        raise bad from None
    problems = notebook_problems(raw)
    if problems:
        shown = "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else "")
        raise _refuse(
            f"{path} carries content that can hold data files: {shown}.",
            "clear those outputs (or remove the attachments) and save the notebook again; "
            "export tables as CSV instead",
        )


_VALIDATORS = {
    ".csv": _validate_csv,
    ".xlsx": _validate_xlsx,
    ".png": _validate_png,
    ".pdf": _validate_pdf,
    ".txt": _validate_text,
    ".md": _validate_text,
    ".ipynb": _validate_notebook,
}
