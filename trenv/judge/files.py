"""What a file's bytes are, whatever its name: data, a figure, a notebook or readable text.

The notebook server asks this before a file's content goes to the browser (the contents API,
trenv.lab.server.guards); the airlock may ask it of a requested file. Pure and bounded: the
caller reads the first :data:`HEAD_BYTES` of a file and, when the file is no larger than
``FileLimits.max_read_bytes``, all of it. Nothing outside ``trenv.judge`` is imported but
``trenv.identifiers``, so the notebook container and the trenv service share one definition.

The judgement, in order:

1. the first bytes name a data format (Parquet, Arrow, pickle, SQLite, zip, gzip, HDF5,
   SPSS/Stata/SAS, ...): data, at any size;
2. larger than ``max_read_bytes``: too large to show (a person does not read a megabyte of
   text in a browser; a program does);
3. a PNG or JPEG: a figure, unless it carries more than ``max_image_extra_bytes`` outside its
   pixels (text, private chunks), anything after its end (a zip appended to a PNG is still a
   zip) or, for a PNG, pixels that look like packed bytes (trenv.judge.image). Other binary
   content is refused: it is nothing a browser shows a person;
4. UTF-8 text: a notebook (judged cell by cell elsewhere), or data when it holds more than the
   output limits of encoded bytes (base64/hex), pseudonyms or table rows (trenv.judge.text),
   else readable text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from trenv.judge.image import ImageRefused, packed_bytes_score
from trenv.judge.text import measure, record_rows, wrapped_blob_chars

MB = 1024 * 1024
# How much of a file the format check reads: tar's magic sits at 257, a zip's first member
# name at 30, an ODS's mimetype after it.
HEAD_BYTES = 4096

Kind = Literal["text", "image", "notebook", "data", "too-large", "binary"]
SHOWN: frozenset[str] = frozenset({"text", "image", "notebook"})


@dataclass(frozen=True)
class FileLimits:
    """The policy's output limits, applied to a whole file (trenv.disclosure.policy)."""

    max_read_bytes: int = 1 * MB  # airlock.max_raw_read_mb
    max_table_rows: int = 48  # egress.output_max_table_rows
    max_blob_chars: int = 1024  # egress.output_max_blob_chars
    max_pseudonyms: int = 48  # egress.output_max_pseudonyms
    # Bytes a figure may carry besides its picture (a software name, a DPI): as many as an
    # output may carry encoded, since compressed rows fit in them as well. Bytes after the
    # image's end are never allowed (a zip appended to a PNG is a zip).
    max_image_extra_bytes: int = 1024  # egress.output_max_blob_chars


@dataclass(frozen=True)
class FileVerdict:
    """What a file is: ``kind`` decides, ``what`` names it for the researcher ("a Parquet
    file", "tabular text (300 rows)"), ``rule`` is the short key for the audit log."""

    kind: Kind
    what: str
    rule: str

    @property
    def shown(self) -> bool:
        return self.kind in SHOWN


# --- binary formats by their first bytes ---------------------------------------------------

_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"PAR1", "a Parquet file"),
    (0, b"PARE", "an encrypted Parquet file"),
    (0, b"ARROW1", "an Arrow/Feather file"),
    (0, b"FEA1", "a Feather (v1) file"),
    (0, b"\xff\xff\xff\xff", "an Arrow IPC stream"),
    (0, b"ORC", "an ORC file"),
    (0, b"Obj\x01", "an Avro file"),
    (0, b"\x93NUMPY", "a NumPy array (.npy)"),
    (0, b"SQLite format 3\x00", "an SQLite database"),
    (8, b"DUCK", "a DuckDB database"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office file (.xls, .doc)"),
    (0, b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (512, b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (0, b"$FL2", "an SPSS data file (.sav)"),
    (0, b"$FL3", "an SPSS data file (.zsav)"),
    (0, b"<stata_dta>", "a Stata data file (.dta)"),
    (12, b"\xc2\xea\x81\x60\xb3\x14\x11\xcf\xbd\x92\x08\x00\x09\xc7\x31\x8c", "a SAS data file"),
    (0, b"HEADER RECORD*******LIB", "a SAS transport file (.xpt)"),
    (0, b"RDX2\n", "an R data file"),
    (0, b"RDX3\n", "an R data file"),
    (0, b"RDA2\n", "an R data file"),
    (0, b"RDA3\n", "an R data file"),
    (0, b"X\n\x00\x00\x00", "an R data file (.rds)"),
    (0, b"\x1f\x8b", "a gzip archive"),
    (0, b"\xfd7zXZ\x00", "an xz archive"),
    (0, b"\x28\xb5\x2f\xfd", "a Zstandard archive"),
    (0, b"\x04\x22\x4d\x18", "an LZ4 archive"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (0, b"Rar!\x1a\x07", "a RAR archive"),
    (257, b"ustar", "a tar archive"),
    (0, b"%PDF-", "a PDF document (it can carry embedded files and compressed data)"),
    (0, b"GIF87a", "a GIF image (figures are shown as PNG, JPEG or SVG)"),
    (0, b"GIF89a", "a GIF image (figures are shown as PNG, JPEG or SVG)"),
    (0, b"BM", "a bitmap image (figures are shown as PNG, JPEG or SVG)"),
    (0, b"II*\x00", "a TIFF image (figures are shown as PNG, JPEG or SVG)"),
    (0, b"MM\x00*", "a TIFF image (figures are shown as PNG, JPEG or SVG)"),
)
_ZIP = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
# Magic numbers a line of text could begin with ("PAR1: minutes", "ORCID list", "BMI"): they
# name a format only when binary bytes follow, as they do in every real file of it.
_WEAK = frozenset({b"PAR1", b"PARE", b"ARROW1", b"FEA1", b"ORC", b"BM", b"$FL2", b"$FL3"})
_BINARY_BYTES = re.compile(rb"[\x00-\x07\x0e-\x1a\x1c-\x1f]")
# Pickle protocols 2 to 5 begin with PROTO; protocol 0 is text: a GLOBAL or a MARK and a
# dict/list, then memo PUTs ("p0").
_PICKLE_BINARY = re.compile(rb"\x80[\x02-\x05]|[\]}]q\x00")  # protocols 2-5; 1
_PICKLE_TEXT = re.compile(rb"(?:c[\w.]+\n\w+\n|\((?:dp|lp)\d+\n)")
_WEBP = re.compile(rb"RIFF....WEBP", re.DOTALL)
_BZIP2 = re.compile(rb"BZh[1-9]1AY&SY")


def _stata_legacy(head: bytes) -> bool:
    # Stata 8-13 (.dta 113-115 and older): version byte, byte order 1 or 2, filetype 1, 0.
    return (
        len(head) >= 4
        and 0x66 <= head[0] <= 0x73
        and head[1] in (1, 2)
        and head[2:4] == b"\x01\x00"
    )


def _zip_kind(head: bytes) -> str:
    """Name a zip by its first member (all of them are refused: a zip holds anything)."""
    size = int.from_bytes(head[26:28], "little") if len(head) >= 30 else 0
    name = head[30 : 30 + size].decode("utf-8", "replace")
    if name == "mimetype":
        kind = head[30 + size : 30 + size + 80]
        if b"opendocument.spreadsheet" in kind:
            return "an OpenDocument spreadsheet (.ods)"
        return "an OpenDocument file"
    if name.endswith(".npy"):
        return "a NumPy archive (.npz)"
    if name.startswith(("xl/", "[Content_Types].xml", "_rels/", "docProps/")):
        return "an Excel or other Office file (a zip archive)"
    return "a zip archive"


def data_format(head: bytes) -> str | None:
    """The data or container format that ``head`` (a file's first bytes) begins, or None."""
    for at, magic, what in _MAGIC:
        if head[at : at + len(magic)] == magic:
            if magic in _WEAK and _is_text(head, partial=True):
                continue
            return what
    if head.startswith(_ZIP):
        return _zip_kind(head)
    if _PICKLE_BINARY.match(head) or _PICKLE_TEXT.match(head):
        return "a Python pickle"
    if _BZIP2.match(head):
        return "a bzip2 archive"
    if _stata_legacy(head):
        return "a Stata data file (.dta)"
    if _WEBP.match(head):
        return "a WebP image (figures are shown as PNG, JPEG or SVG)"
    return None


# --- figures -------------------------------------------------------------------------------

_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
# Chunks that make up the picture; everything else (tEXt, zTXt, iTXt, eXIf, iCCP, private
# chunks, APNG frames) is counted as extra.
_PNG_PICTURE = frozenset(
    {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"pHYs",
     b"bKGD"}
)  # fmt: skip


def image_format(head: bytes) -> str | None:
    if head.startswith(_PNG):
        return "PNG"
    if head.startswith(_JPEG):
        return "JPEG"
    return None


def _png_extra(data: bytes) -> tuple[int, int] | None:
    """(bytes in a PNG's non-picture chunks, bytes after its end); None if damaged."""
    pos, extra = len(_PNG), 0
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunk = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            return None
        if chunk not in _PNG_PICTURE:
            extra += length
        if chunk == b"IEND":
            return extra, len(data) - end
        pos = end
    return None


def _jpeg_scan_end(data: bytes, pos: int) -> int | None:
    """Where the entropy-coded data that starts at ``pos`` ends (at the next marker)."""
    while True:
        at = data.find(b"\xff", pos)
        if at < 0 or at + 1 >= len(data):
            return None
        following = data[at + 1]
        if following == 0 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            pos = at + 1 if following == 0xFF else at + 2
            continue
        return at


def _jpeg_extra(data: bytes) -> tuple[int, int] | None:
    """(bytes in a JPEG's APPn/COM segments, bytes after its end); None if damaged."""
    pos, extra = 2, 0
    while pos + 2 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == 0xD9:  # end of image
            return extra, len(data) - pos - 2
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        if pos + 4 > len(data):
            return None
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            extra += length
        pos += 2 + length
        if marker == 0xDA:  # start of scan: skip the compressed picture
            found = _jpeg_scan_end(data, pos)
            if found is None:
                return None
            pos = found
    return None


def _judge_image(data: bytes, fmt: str, limits: FileLimits) -> FileVerdict:
    found = _png_extra(data) if fmt == "PNG" else _jpeg_extra(data)
    if found is None:
        return FileVerdict("binary", f"a damaged {fmt} image", "image-damaged")
    extra, trailing = found
    if trailing:
        return FileVerdict(
            "data",
            f"a {fmt} image with {trailing:,} bytes of another file after its end",
            "image-extra",
        )
    if extra > limits.max_image_extra_bytes:
        return FileVerdict(
            "data",
            f"a {fmt} image carrying {extra:,} bytes besides its picture (a figure carries "
            f"at most {limits.max_image_extra_bytes:,})",
            "image-extra",
        )
    if fmt == "PNG":
        # The pixels themselves can be a file laid out as colour values (trenv.judge.image).
        try:
            packed = packed_bytes_score(data)
        except ImageRefused as error:
            return FileVerdict(
                "binary", f"a PNG image that cannot be shown ({error})", "image-damaged"
            )
        if packed.packed:
            return FileVerdict(
                "data",
                f"a PNG image whose pixels look like packed bytes ({packed.reason})",
                "image-packed",
            )
    return FileVerdict("image", f"a {fmt} image", "image")


# --- text ----------------------------------------------------------------------------------

_SVG = re.compile(r"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*|<!DOCTYPE[^>]*>\s*)*<svg[\s>]", re.S)
_TAG = re.compile(r"<[^>]*>")


def is_notebook_text(text: str) -> bool:
    """Is ``text`` a Jupyter notebook (nbformat 4 JSON)?"""
    if not text.lstrip().startswith("{") or '"nbformat"' not in text:
        return False
    try:
        document = json.loads(text)
    except ValueError:
        return False
    return isinstance(document, dict) and isinstance(document.get("cells"), list)


def judge_text_content(text: str, limits: FileLimits, *, svg: bool = False) -> FileVerdict:
    """Readable text, or data when it holds more encoded bytes, pseudonyms or table rows
    than one output may. In an SVG only the text between tags is read for rows and
    pseudonyms (path coordinates are the drawing), the whole of it for encoded bytes."""
    found = measure(text)
    blob = found.blob_chars + wrapped_blob_chars(text)
    if blob > limits.max_blob_chars:
        return FileVerdict(
            "data",
            f"encoded data ({blob:,} characters of base64, hex or raw bytes; at most "
            f"{limits.max_blob_chars:,} are shown)",
            "blob",
        )
    readable = _TAG.sub("\n", text) if svg else text
    rows = max(record_rows(readable), 0 if svg else found.html_rows)
    if rows > limits.max_table_rows:
        return FileVerdict(
            "data",
            f"tabular data ({rows:,} rows; at most {limits.max_table_rows} are shown)",
            "table-rows",
        )
    pseudonyms = measure(readable).pseudonyms if svg else found.pseudonyms
    if pseudonyms > limits.max_pseudonyms:
        return FileVerdict(
            "data",
            f"a list of people ({pseudonyms:,} pseudonyms; at most {limits.max_pseudonyms} "
            "are shown)",
            "pseudonyms",
        )
    if svg:
        return FileVerdict("image", "an SVG image", "image")
    return FileVerdict("text", "text", "text")


def _size(nbytes: int) -> str:
    return f"{nbytes / MB:.1f} MB" if nbytes >= MB // 10 else f"{nbytes:,} bytes"


def judge_head(head: bytes, size: int, limits: FileLimits) -> FileVerdict | None:
    """The verdict from a file's first bytes and size alone, or None when its whole content
    is needed (it is no larger than ``limits.max_read_bytes`` and of no refused format)."""
    fmt = data_format(head)
    if fmt is not None:
        return FileVerdict("data", fmt, "format")
    if size <= limits.max_read_bytes:
        return None
    image = image_format(head)
    if image is not None:
        what = f"a {image} image of {_size(size)}"
    elif _is_text(head, partial=True):
        what = f"a text file of {_size(size)}"
    else:
        what = f"a file of {_size(size)}"
    return FileVerdict(
        "too-large",
        f"{what}, too large to show in the browser (at most {_size(limits.max_read_bytes)})",
        "size",
    )


def _is_text(data: bytes, *, partial: bool = False) -> bool:
    """UTF-8 without the control bytes that only binary formats hold (text has tabs, line
    ends, form feeds, backspaces and terminal escapes). ``partial``: ``data`` is a file's
    head, which may end in the middle of a character."""
    if _BINARY_BYTES.search(data):
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return partial and error.start >= len(data) - 3 and error.reason == "unexpected end of data"
    return True


def decode_text(data: bytes) -> str | None:
    """``data`` as text (UTF-8, a byte-order mark dropped), None when it is not text."""
    if not _is_text(data):
        return None
    return data.decode("utf-8").removeprefix("\ufeff")


def judge_file(data: bytes, limits: FileLimits) -> FileVerdict:
    """What the whole content ``data`` of a file is (see the module's docstring)."""
    early = judge_head(data[:HEAD_BYTES], len(data), limits)
    if early is not None:
        return early
    image = image_format(data)
    if image is not None:
        return _judge_image(data, image, limits)
    text = decode_text(data)
    if text is None:
        return FileVerdict(
            "binary",
            "a binary file of no format the browser shows (not text, PNG or JPEG)",
            "binary",
        )
    if is_notebook_text(text):
        return FileVerdict("notebook", "a notebook", "notebook")
    return judge_text_content(text, limits, svg=bool(_SVG.match(text[:HEAD_BYTES])))
