"""What one kernel message may carry to the browser: a pure judgement over message dicts.

The browser is outside the TRE, and the kernel runs the researcher's code: it holds the
message signing key, so it can send any message type on any channel with any content (a
``status`` message with a dataset in an extra field is as easy as a ``print``). So nothing
in a message is trusted because of its type. Every message is cut into pieces and each
piece is judged by :mod:`trenv.judge.text` (or, for images, by size and the packed-pixel
detector):

- **mime bundles** (``data`` of ``display_data``, ``execute_result``,
  ``update_display_data``, ``inspect_reply``, the ``page`` payload of ``execute_reply``,
  ``user_expressions``, outputs inside widget state, ...): every mimetype on its own, text
  under the ``output_max_*`` limits, images apart;
- **the output text fields**: ``stream`` text, an error's traceback, ``input_request``'s
  prompt, ``complete_reply``'s matches, a comm message's ``data`` (widgets carry data);
- **the code echo** (``execute_input``): judged the same, but a cut echo only blanks the
  echo (the notebook does not show it, and the browser sent that code itself);
- **everything else** (the rest of the content and the metadata): judged for encoded
  blobs, pseudonyms and size, not for table rows, because protocol structure (the 500
  typed entries of a numpy completion) looks like rows and is not data;
- **the envelope** (header, parent header): only short scalar fields may pass.

Per cell (the parent header's ``msg_id``) the characters and the table rows add up against
``cell_max_chars`` / ``cell_max_table_rows``, so output split over many prints meets the
same limit as one print. A cut output is replaced by a marker in the same cell; later
output of that cell is dropped. Messages the browser needs (``status``, replies) always
pass, reduced to their protocol skeleton when they carry too much.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from trenv.disclosure.policy import EgressSetting
from trenv.judge import image as image_judge
from trenv.judge.text import Cut, TextLimits, TextMeasure, judge_measure, measure, table_rows
from trenv.lab.server.decisions import EXPORT_HINT
from trenv.lab.server.progress import ProgressSeries

Kind = Literal["text", "image"]
Channel = Literal["kernel", "terminal", "contents"]

# Messages that put output in a cell: cut ones become a marker of the same type.
OUTPUT_TYPES = frozenset(
    {"stream", "display_data", "execute_result", "update_display_data", "error"}
)
# Comm messages whose data a widget shows: cut ones are dropped, a stream marker says why.
COMM_DATA_TYPES = frozenset({"comm_open", "comm_msg"})
# Image formats a browser shows as pixels (SVG is text: its coordinates are the data).
IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"RIFF", "image/webp"),
)
# 4 MB is several times a figure at screen resolution (a matplotlib PNG is 20-250 KB);
# what many images carry is bounded by the image meter.
IMAGE_MAX_BYTES = 4 * 1024 * 1024
# Colour and resolution chunks (a matplotlib PNG has a 9-byte pHYs); an sRGB ICC profile
# compresses to about 2.5 KB, more is room for a file.
_SMALL_PNG_CHUNKS = frozenset({b"pHYs", b"sRGB", b"gAMA", b"cHRM", b"sBIT", b"iCCP", b"bKGD"})
PNG_COLOUR_MAX_BYTES = 4096
# Header fields are ids, names, dates and versions: anything longer is not protocol.
ENVELOPE_MAX_CHARS = 256
ENVELOPE_MAX_FIELDS = 16
# The fields of a skeleton are short protocol values; longer strings are cut to this.
SKELETON_MAX_CHARS = 128
# Cells remembered per kernel (their running totals; older cells are finished), and
# verdicts on recent messages (every browser tab on a kernel receives each message).
CELLS_REMEMBERED = 1024
VERDICTS_REMEMBERED = 4096
_NO_ROWS = 2**62
# Where a loop's progress report can stand (printed, or shown as plain text).
_PROGRESS_WHERE = frozenset({"stream", "text/plain"})
_STATES = frozenset({"busy", "idle", "starting", "restarting", "dead"})
_IS_COMPLETE = frozenset({"complete", "incomplete", "invalid", "unknown"})


class Gate(Protocol):
    """The part of the egress meter (trenv.lab.server.meter) that the judgement asks."""

    def allowed(self, kind: Kind) -> bool: ...

    def stopped_message(self, kind: Kind) -> str: ...


class Meter(Gate, Protocol):
    """The egress meter's interface (the contract in docs/lab.md, "The egress meter")."""

    def add(self, channel: Channel, kind: Kind, nbytes: int) -> None: ...

    def event(self, action: str, detail: dict[str, object]) -> None: ...


@dataclass(frozen=True)
class OutputLimits:
    """The limits of output to the browser, from the policy's ``egress`` section."""

    output: TextLimits = field(default_factory=TextLimits)
    cell_max_chars: int = 256 * 1024
    cell_max_table_rows: int = 200
    # Encoded blobs and pseudonyms split over many prints: the per-output limits times the
    # number of full-size outputs a cell may send (cell_max_chars / output_max_chars).
    cell_max_blob_chars: int = 4 * 1024
    cell_max_pseudonyms: int = 4 * 48
    image_max_bytes: int = IMAGE_MAX_BYTES
    image_max_pixels: int = image_judge.DEFAULT_MAX_PIXELS

    @classmethod
    def from_setting(cls, egress: EgressSetting) -> OutputLimits:
        outputs = max(1, egress.cell_max_chars // egress.output_max_chars)
        return cls(
            output=TextLimits(
                max_chars=egress.output_max_chars,
                max_blob_chars=egress.output_max_blob_chars,
                max_table_rows=egress.output_max_table_rows,
                max_pseudonyms=egress.output_max_pseudonyms,
            ),
            cell_max_chars=egress.cell_max_chars,
            cell_max_table_rows=egress.cell_max_table_rows,
            cell_max_blob_chars=outputs * egress.output_max_blob_chars,
            cell_max_pseudonyms=outputs * egress.output_max_pseudonyms,
        )

    @property
    def structure(self) -> TextLimits:
        """Limits of the non-output rest of a message: rows there are protocol, not data."""
        return replace(self.output, max_table_rows=_NO_ROWS)


# --- markers: what the researcher reads ------------------------------------------------------


def cut_marker(reason: str, *, cell: bool = True) -> str:
    """The text that stands in the cell instead of a cut output."""
    rest = " The rest of this cell's output is withheld too." if cell else ""
    return (
        f"[trenv] Output withheld from the browser: {reason}{rest} An audit event was "
        f"written. {EXPORT_HINT}"
    )


# --- pieces ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextPiece:
    """One piece of text a message carries, and how it is judged."""

    where: str  # a mimetype, or stream, traceback, prompt, matches, comm, code, buffer, content
    text: str
    table_rows: bool = True  # judged for table rows (False for protocol structure)
    cell_rows: bool = True  # its rows add up in the cell (False for the code echo)
    group: str = ""  # pieces of one mime bundle are alternatives: their rows count once


@dataclass(frozen=True)
class ImagePiece:
    where: str  # the mimetype
    value: str | bytes  # base64 text in a bundle, raw bytes in a buffer

    @property
    def wire_chars(self) -> int:
        return len(self.value)


@dataclass
class Pieces:
    texts: list[TextPiece] = field(default_factory=list)
    images: list[ImagePiece] = field(default_factory=list)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _is_bundle(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(k, str) and "/" in k for k in value)
    )


def _flatten(value: Any, bundles: list[Mapping[str, Any]], out: list[str]) -> None:
    """Lines of text for ``value``: a flat record or list is one line (so records and rows
    of a table look like rows), strings keep their own lines, mime bundles are set apart."""
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, Mapping):
        data = value.get("data")
        if _is_bundle(data):
            bundles.append(data)
            value = {k: v for k, v in value.items() if k != "data"}
        if all(_is_scalar(v) for v in value.values()):
            out.append(", ".join(f"{k}: {v}" for k, v in value.items()))
        else:
            for k, v in value.items():
                out.append(str(k))
                _flatten(v, bundles, out)
    elif isinstance(value, list | tuple):
        if all(_is_scalar(v) for v in value):
            out.append(", ".join(str(v) for v in value))
        else:
            for v in value:
                _flatten(v, bundles, out)
    else:
        out.append(str(value))


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)  # nbformat's multi-line strings
    lines: list[str] = []
    nested: list[Mapping[str, Any]] = []
    _flatten(value, nested, lines)
    for bundle in nested:
        for mimetype, inner in bundle.items():
            lines.append(mimetype)
            lines.append(_text_of(inner))
    return "\n".join(lines)


def _image_type(mimetype: str) -> bool:
    return mimetype.startswith("image/") and not mimetype.startswith("image/svg")


def _add_bundle(pieces: Pieces, bundle: Mapping[str, Any], group: str) -> None:
    for mimetype, value in bundle.items():
        if _image_type(mimetype) and isinstance(value, str):
            pieces.images.append(ImagePiece(mimetype, value))
        else:
            pieces.texts.append(TextPiece(mimetype, _text_of(value), group=group))


def _buffer_image(data: bytes) -> str | None:
    for magic, mimetype in IMAGE_MAGIC:
        if data.startswith(magic):
            return mimetype
    return None


def pieces_of(msg: Mapping[str, Any]) -> Pieces:
    """Every piece of text and every image in ``msg`` (envelope aside)."""
    msg_type = str((msg.get("header") or {}).get("msg_type", ""))
    content = msg.get("content")
    rest: dict[str, Any] = dict(content) if isinstance(content, Mapping) else {"": content}
    pieces = Pieces()
    bundles: list[Mapping[str, Any]] = []

    def take(key: str, where: str, *, table_rows: bool = True, cell_rows: bool = True) -> None:
        if key in rest:
            value = rest.pop(key)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                text = "\n".join(value)
            else:
                text = _text_of(value)
            pieces.texts.append(TextPiece(where, text, table_rows, cell_rows))

    if msg_type == "stream":
        take("text", "stream")
    elif msg_type == "error":
        take("traceback", "traceback")
        take("evalue", "traceback")
    elif msg_type == "execute_input":
        take("code", "code", cell_rows=False)
    elif msg_type == "input_request":
        take("prompt", "prompt")
    elif msg_type == "complete_reply":
        take("matches", "matches", cell_rows=False)
    elif msg_type in COMM_DATA_TYPES and "data" in rest:
        lines: list[str] = []
        _flatten(rest.pop("data"), bundles, lines)
        pieces.texts.append(TextPiece("comm", "\n".join(lines)))
    lines = []
    _flatten(rest, bundles, lines)
    _flatten(msg.get("metadata") or {}, bundles, lines)
    for i, bundle in enumerate(bundles):
        _add_bundle(pieces, bundle, group=f"bundle-{i}")
    pieces.texts.append(TextPiece("content", "\n".join(lines), table_rows=False))
    for data in msg.get("buffers") or ():
        raw = bytes(data)
        mimetype = _buffer_image(raw)
        if mimetype:
            pieces.images.append(ImagePiece(mimetype, raw))
        else:
            pieces.texts.append(TextPiece("buffer", raw.decode("latin-1")))
    return pieces


def image_chars(msg: Mapping[str, Any]) -> int:
    """Characters of ``msg`` that are images (counted as images by the meter)."""
    try:
        return sum(p.wire_chars for p in pieces_of(msg).images)
    except RecursionError:
        return 0


# --- images ---------------------------------------------------------------------------------


def _png_cut(data: bytes, limits: OutputLimits) -> Cut | None:
    """A PNG: no bytes beside the picture (text or private chunks, data after the end), and
    pixels that look like a picture rather than a file laid out as pixel values."""
    try:
        chunks = image_judge.png_chunk_list(data)
    except image_judge.ImageRefused as e:
        return Cut("image-bytes", f"an image that is not a well-formed PNG ({e}).")
    end = len(image_judge.PNG_SIGNATURE) + sum(12 + len(c.payload) for c in chunks)
    extra = (
        len(data)
        - end
        + sum(
            len(c.payload)
            for c in chunks
            if c.type not in image_judge.KEPT_CHUNKS and c.type not in _SMALL_PNG_CHUNKS
        )
    )
    colour = sum(len(c.payload) for c in chunks if c.type in _SMALL_PNG_CHUNKS)
    if extra > limits.output.max_blob_chars or colour > PNG_COLOUR_MAX_BYTES:
        return Cut(
            "image-bytes",
            f"an image that carries {extra + colour:,} bytes besides its picture (text or "
            "private chunks, or data after its end).",
        )
    try:
        verdict = image_judge.packed_bytes_score(data, limits.image_max_pixels)
    except image_judge.ImageRefused as e:
        return Cut("image-bytes", f"an image whose pixels cannot be checked ({e}).")
    if verdict.packed:
        reason = f"an image whose pixels look like packed data: {verdict.reason}."
        return Cut("image-packed", reason)
    return None


def _jpeg_cut(data: bytes, limits: OutputLimits) -> Cut | None:
    """A JPEG: lossy pixels, but its APPn and comment segments and anything after its end
    marker can hold any bytes."""
    if not data.startswith(b"\xff\xd8"):
        return Cut("image-bytes", "an image that is not a well-formed JPEG.")
    pos, extra = 2, 0
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:  # start of scan: the picture follows, up to the end marker
            end = data.rfind(b"\xff\xd9")
            extra += len(data) - (end + 2) if end > pos else 0
            break
        if 0xE1 <= marker <= 0xEF or marker == 0xFE:  # APP1..APP15 (Exif, XMP, ...), comment
            extra += length
        pos += 2 + length
    else:
        return Cut("image-bytes", "an image that is not a well-formed JPEG.")
    if extra > limits.output.max_blob_chars:
        return Cut(
            "image-bytes",
            f"an image that carries {extra:,} bytes besides its picture (metadata segments, "
            "or data after its end).",
        )
    return None


def judge_image(piece: ImagePiece, limits: OutputLimits) -> Cut | None:
    """Why an image may not be shown: too large, bytes beside the picture, or pixels that
    look like packed bytes (trenv.judge.image). PNG and JPEG only: other formats (GIF, WebP,
    BMP, ...) can carry bytes losslessly and are not checked, so they are not shown."""
    if piece.wire_chars > limits.image_max_bytes:
        return Cut(
            "image-size",
            f"an image of {piece.wire_chars:,} bytes; at most {limits.image_max_bytes:,} "
            "are shown.",
        )
    if isinstance(piece.value, bytes):
        data = piece.value
    else:
        try:
            data = base64.b64decode(piece.value, validate=False)
        except (binascii.Error, ValueError):
            return Cut("image-bytes", "an image whose data is not valid base64.")
    if piece.where == "image/png":
        return _png_cut(data, limits)
    if piece.where == "image/jpeg":
        return _jpeg_cut(data, limits)
    return Cut(
        "image-format",
        f"an image in a format that is not checked ({piece.where[:40]}); show figures as PNG.",
    )


# --- the envelope and skeletons -------------------------------------------------------------


def envelope_cut(msg: Mapping[str, Any]) -> Cut | None:
    """Header and parent header hold ids, names, a date and a version: nothing longer."""
    for part in ("header", "parent_header"):
        value = msg.get(part)
        if value is None:
            continue
        if not isinstance(value, Mapping) or len(value) > ENVELOPE_MAX_FIELDS:
            return Cut("envelope", f"a message {part} that is not a protocol header.")
        for key, item in value.items():
            if not _is_scalar(item) and not isinstance(item, dt.datetime):
                return Cut("envelope", f"a message {part} field that is not a plain value.")
            if len(str(key)) + len(str(item)) > ENVELOPE_MAX_CHARS:
                return Cut("envelope", f"a message {part} field longer than protocol needs.")
    return None


def _short(value: Any, default: str = "") -> str:
    return value[:SKELETON_MAX_CHARS] if isinstance(value, str) else default


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _envelope(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        return {}
    keep = ("msg_id", "msg_type", "session", "username", "date", "version", "subshell_id")
    out: dict[str, Any] = {}
    for key in keep:
        if key in value:
            item = value[key]
            out[key] = item if isinstance(item, dt.datetime) else _short(item)
    return out


def _skeleton_content(msg_type: str, c: Mapping[str, Any]) -> dict[str, Any] | None:
    """The protocol fields of a message the browser needs, each short and typed."""
    status = c.get("status") if c.get("status") in ("ok", "error", "abort") else "ok"
    if msg_type == "status":
        state = c.get("execution_state")
        return {"execution_state": state} if state in _STATES else None
    if msg_type == "execute_input":
        return {"code": "", "execution_count": _int(c.get("execution_count"))}
    if msg_type == "execute_reply":
        out: dict[str, Any] = {
            "status": status,
            "execution_count": _int(c.get("execution_count")),
            "payload": [],
            "user_expressions": {},
        }
        if status == "error":
            out.update(ename="OutputWithheld", evalue="", traceback=[])
        return out
    if msg_type == "inspect_reply":
        return {"status": "ok", "found": False, "data": {}, "metadata": {}}
    if msg_type == "complete_reply":
        return {
            "status": "ok",
            "matches": [],
            "cursor_start": _int(c.get("cursor_start")) or 0,
            "cursor_end": _int(c.get("cursor_end")) or 0,
            "metadata": {},
        }
    if msg_type == "is_complete_reply":
        state = c.get("status") if c.get("status") in _IS_COMPLETE else "unknown"
        return {"status": state, "indent": ""} if state == "incomplete" else {"status": state}
    if msg_type == "kernel_info_reply":
        info = c.get("language_info") if isinstance(c.get("language_info"), Mapping) else {}
        language = {k: _short(v) for k, v in info.items() if isinstance(v, str)}
        return {
            "status": status,
            "protocol_version": _short(c.get("protocol_version"), "5.3"),
            "implementation": _short(c.get("implementation")),
            "implementation_version": _short(c.get("implementation_version")),
            "language_info": language,
            "banner": "",
            "help_links": [],
        }
    if msg_type == "history_reply":
        return {"status": "ok", "history": []}
    if msg_type == "comm_info_reply":
        return {"status": "ok", "comms": {}}
    if msg_type in ("shutdown_reply", "interrupt_reply"):
        return {"status": status, "restart": bool(c.get("restart"))}
    if msg_type == "input_request":
        return {"prompt": "", "password": bool(c.get("password"))}
    if msg_type == "comm_close":
        return {"comm_id": _short(c.get("comm_id")), "data": {}}
    if msg_type == "clear_output":
        return {"wait": bool(c.get("wait"))}
    if msg_type == "debug_reply":
        return {
            "type": "response",
            "request_seq": _int(c.get("request_seq")) or 0,
            "command": _short(c.get("command")),
            "success": False,
            "message": "withheld",
        }
    return None


def skeleton(msg: Mapping[str, Any]) -> dict[str, Any] | None:
    """``msg`` reduced to what the protocol needs, or None when the browser can do without."""
    header = _envelope(msg.get("header"))
    content = msg.get("content") if isinstance(msg.get("content"), Mapping) else {}
    body = _skeleton_content(str(header.get("msg_type", "")), content)
    if body is None:
        return None
    return _message(header, _envelope(msg.get("parent_header")), body)


def _message(header: dict[str, Any], parent: dict[str, Any], content: dict[str, Any]) -> dict:
    return {
        "header": header,
        "parent_header": parent,
        "metadata": {},
        "content": content,
        "buffers": [],
        "msg_id": header.get("msg_id", ""),
        "msg_type": header.get("msg_type", ""),
    }


def stream_marker(msg: Mapping[str, Any], text: str) -> dict[str, Any]:
    """A new ``stream`` message (stderr) with ``text``, in the cell of ``msg``."""
    header = _envelope(msg.get("header"))
    new = {
        "msg_id": uuid.uuid4().hex,
        "msg_type": "stream",
        "session": header.get("session", ""),
        "username": header.get("username", ""),
        "date": dt.datetime.now(dt.UTC).isoformat(),
        "version": header.get("version") or "5.3",
    }
    return _message(new, _envelope(msg.get("parent_header")), {"name": "stderr", "text": text})


def withheld(msg: Mapping[str, Any], text: str) -> list[tuple[str, dict[str, Any]]]:
    """What the browser gets instead of ``msg`` (an output): ``text`` in the same cell."""
    header = _envelope(msg.get("header"))
    parent = _envelope(msg.get("parent_header"))
    msg_type = header.get("msg_type")
    content = msg.get("content") if isinstance(msg.get("content"), Mapping) else {}
    bundle = {"data": {"text/plain": text}, "metadata": {}}
    if msg_type == "stream":
        return [("iopub", _message(header, parent, {"name": "stderr", "text": text + "\n"}))]
    if msg_type == "error":
        body = {"ename": "OutputWithheld", "evalue": text, "traceback": [text]}
        return [("iopub", _message(header, parent, body))]
    if msg_type == "display_data":
        return [("iopub", _message(header, parent, {**bundle, **_transient(content)}))]
    if msg_type == "update_display_data":
        return [("iopub", _message(header, parent, {**bundle, **_transient(content)}))]
    if msg_type == "execute_result":
        count = _int(content.get("execution_count"))
        return [("iopub", _message(header, parent, {**bundle, "execution_count": count}))]
    return [("iopub", stream_marker(msg, text + "\n"))]


def _transient(content: Mapping[str, Any]) -> dict[str, Any]:
    transient = content.get("transient")
    if isinstance(transient, Mapping) and isinstance(transient.get("display_id"), str):
        return {"transient": {"display_id": _short(transient["display_id"])}}
    return {}


# --- per cell -------------------------------------------------------------------------------


@dataclass
class CellTotals:
    """What one cell (one parent msg_id) has sent so far."""

    chars: int = 0
    rows: int = 0
    blob_chars: int = 0
    pseudonyms: int = 0
    cut: bool = False
    stopped: set[str] = field(default_factory=set)  # kinds whose meter marker was shown
    progress: ProgressSeries = field(default_factory=ProgressSeries)  # not counted as rows

    def add(self, other: CellTotals) -> None:
        self.chars += other.chars
        self.rows += other.rows
        self.blob_chars += other.blob_chars
        self.pseudonyms += other.pseudonyms

    def over(self, limits: OutputLimits) -> Cut | None:
        """The first per-cell limit these totals break, or None."""
        if self.blob_chars > limits.cell_max_blob_chars:
            return Cut(
                "cell-blob",
                f"this cell has sent {self.blob_chars:,} characters that look like encoded "
                f"data (base64, hex or raw bytes); at most {limits.cell_max_blob_chars:,} "
                "per cell.",
            )
        if self.rows > limits.cell_max_table_rows:
            return Cut(
                "cell-rows",
                f"this cell has sent {self.rows:,} rows of tables; at most "
                f"{limits.cell_max_table_rows} are shown per cell (look at a few rows, "
                "aggregate the rest).",
            )
        if self.pseudonyms > limits.cell_max_pseudonyms:
            return Cut(
                "cell-pseudonyms",
                f"this cell has sent {self.pseudonyms:,} person pseudonyms; at most "
                f"{limits.cell_max_pseudonyms} per cell.",
            )
        if self.chars > limits.cell_max_chars:
            return Cut(
                "cell-size",
                f"this cell has sent {self.chars:,} characters; at most "
                f"{limits.cell_max_chars:,} are shown per cell.",
            )
        return None


def cell_of(msg: Mapping[str, Any]) -> str:
    parent = msg.get("parent_header")
    msg_id = parent.get("msg_id") if isinstance(parent, Mapping) else None
    return msg_id[:ENVELOPE_MAX_CHARS] if isinstance(msg_id, str) and msg_id else "(no parent)"


# --- the verdict ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What to send instead of a message: the original, replacements, or nothing."""

    original: bool
    send: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (channel, msg)
    cuts: list[dict[str, object]] = field(default_factory=list)  # audit details, no data
    image_chars: int = 0  # of the original, when it is sent: the meter counts them as images


@dataclass(frozen=True)
class _Finding:
    cut: Cut
    where: str
    measure: TextMeasure | None = None


def _judge_texts(
    pieces: Sequence[TextPiece], limits: OutputLimits, progress: ProgressSeries
) -> tuple[_Finding | None, CellTotals]:
    """The first cut among ``pieces``, and what they add to their cell's totals."""
    totals = CellTotals()
    rows_by_group: dict[str, int] = {}
    ungrouped_rows = 0
    finding: _Finding | None = None
    for piece in pieces:
        m = measure(piece.text)
        if piece.table_rows and m.table_rows and piece.where in _PROGRESS_WHERE:
            rest = progress.without_progress(piece.text)
            if rest is not None:  # a loop reporting its progress: those lines are not rows
                m = replace(m, table_rows=table_rows(rest))
        totals.chars += m.chars
        totals.blob_chars += m.blob_chars
        totals.pseudonyms += m.pseudonyms
        if finding is None:
            cut = judge_measure(m, limits.output if piece.table_rows else limits.structure)
            if cut is not None:
                finding = _Finding(cut, piece.where, m)
        if piece.table_rows and piece.cell_rows:
            rows = max(m.table_rows, m.html_rows)
            if piece.group:
                rows_by_group[piece.group] = max(rows_by_group.get(piece.group, 0), rows)
            else:
                ungrouped_rows += rows
    totals.rows = ungrouped_rows + sum(rows_by_group.values())
    return finding, totals


def _detail(
    msg_type: str, cell_id: str, finding: _Finding, cell: CellTotals, channel: str
) -> dict[str, object]:
    detail: dict[str, object] = {
        "channel": "kernel",
        "zmq_channel": channel,
        "rule": finding.cut.rule,
        "msg_type": msg_type[:64],
        "where": finding.where[:100],
        "cell": cell_id[:64],
        "cell_chars": cell.chars,
        "cell_table_rows": cell.rows,
        "cell_blob_chars": cell.blob_chars,
    }
    m = finding.measure
    if m is not None:
        detail.update(
            chars=m.chars,
            blob_chars=m.blob_chars,
            table_rows=max(m.table_rows, m.html_rows),
            pseudonyms=m.pseudonyms,
        )
    return detail


def _stopped(
    msg: Mapping[str, Any], msg_type: str, kind: Kind, cell: CellTotals, gate: Gate
) -> Verdict:
    """Output of ``kind`` while the meter is past its hard level: one marker per cell."""
    if kind in cell.stopped:
        return Verdict(original=False)
    cell.stopped.add(kind)
    text = gate.stopped_message(kind)
    if msg_type in OUTPUT_TYPES:
        return Verdict(original=False, send=withheld(msg, text))
    return Verdict(original=False, send=[("iopub", stream_marker(msg, text + "\n"))])


def _images_only(msg: Mapping[str, Any]) -> dict[str, Any] | None:
    """``msg`` with only its image mimetypes (text is withheld, images are not)."""
    content = msg.get("content")
    if not isinstance(content, Mapping) or not isinstance(content.get("data"), Mapping):
        return None
    data = {k: v for k, v in content["data"].items() if _image_type(k)}
    if not data:
        return None
    header = _envelope(msg.get("header"))
    body = {"data": data, "metadata": {}, **_transient(content)}
    if header.get("msg_type") == "execute_result":
        body["execution_count"] = _int(content.get("execution_count"))
    return _message(header, _envelope(msg.get("parent_header")), body)


def judge_message(
    channel: str,
    msg: Mapping[str, Any],
    cell: CellTotals,
    limits: OutputLimits,
    gate: Gate,
) -> Verdict:
    """What may go to the browser for ``msg`` (one kernel message on ``channel``).

    ``cell`` is the running total of the message's cell and is updated. Pure apart from
    that and from asking ``gate`` whether the meter still lets output of a kind through.
    """
    header = msg.get("header") if isinstance(msg.get("header"), Mapping) else {}
    msg_type = str(header.get("msg_type", ""))
    cell_id = cell_of(msg)
    is_output = msg_type in OUTPUT_TYPES or msg_type in COMM_DATA_TYPES
    finding: _Finding | None = None
    envelope = envelope_cut(msg)
    try:
        pieces = pieces_of(msg)
    except RecursionError:
        pieces = Pieces()
        envelope = envelope or Cut("structure", "a message nested deeper than output needs.")
    if envelope is not None:
        finding = _Finding(envelope, "envelope")
    if is_output and cell.cut:
        return Verdict(original=False)  # the cell was cut: the rest stays cut
    text_finding, added = _judge_texts(pieces.texts, limits, cell.progress)
    finding = finding or text_finding
    cell.add(added)
    for image in pieces.images:
        if finding is None and gate.allowed("image"):
            cut = judge_image(image, limits)
            if cut is not None:
                finding = _Finding(cut, image.where)
    # Once a cell is cut its outputs are dropped (above) and its protocol messages are
    # judged on their own: its totals stay over the limit, and the notebook needs them.
    if finding is None and not cell.cut and (over := cell.over(limits)) is not None:
        finding = _Finding(over, "cell")
    if finding is not None:
        return _cut(channel, msg, msg_type, cell_id, cell, finding, is_output)
    if pieces.images and not gate.allowed("image"):
        if is_output:
            return _stopped(msg, msg_type, "image", cell, gate)
        return _protocol(channel, msg)
    if not gate.allowed("text"):
        if not is_output:
            return _protocol(channel, msg)
        images = _images_only(msg) if pieces.images else None
        if images is not None:
            return Verdict(original=False, send=[(channel, images)])
        return _stopped(msg, msg_type, "text", cell, gate)
    return Verdict(original=True, image_chars=sum(p.wire_chars for p in pieces.images))


def _protocol(channel: str, msg: Mapping[str, Any]) -> Verdict:
    """A protocol message while output is withheld: only its skeleton goes."""
    bare = skeleton(msg)
    return Verdict(original=False, send=[(channel, bare)] if bare else [])


def _cut(
    channel: str,
    msg: Mapping[str, Any],
    msg_type: str,
    cell_id: str,
    cell: CellTotals,
    finding: _Finding,
    is_output: bool,
) -> Verdict:
    detail = _detail(msg_type, cell_id, finding, cell, channel)
    if msg_type == "execute_input":
        # The echo of the code the browser sent: not shown in a notebook, so it is blanked
        # silently and the cell's output goes on.
        bare = skeleton(msg)
        return Verdict(original=False, send=[(channel, bare)] if bare else [], cuts=[detail])
    cell.cut = True
    marker = cut_marker(finding.cut.reason)
    if is_output:
        return Verdict(original=False, send=withheld(msg, marker), cuts=[detail])
    # The marker first: it reaches the cell before the reply that ends the request.
    send: list[tuple[str, dict[str, Any]]] = [("iopub", stream_marker(msg, marker + "\n"))]
    bare = skeleton(msg)
    if bare is not None:
        send.append((channel, bare))
    return Verdict(original=False, send=send, cuts=[detail])


class KernelCells:
    """The cells of one kernel and the verdicts on its recent messages, shared by all the
    websocket connections to that kernel.

    Every browser tab on a kernel receives each message on its own connection: the message
    is judged (and its cell counted, and a cut audited) once, and every connection sends the
    same verdict. A new connection (a reconnect) finds the running cell's totals, so
    reconnecting does not reset a cell's limits. A message is known by its channel, its
    ``msg_id`` and a checksum of its bytes, so a kernel cannot reuse an id for new content.
    """

    def __init__(self, cells: int = CELLS_REMEMBERED, verdicts: int = VERDICTS_REMEMBERED) -> None:
        self._cells: OrderedDict[str, CellTotals] = OrderedDict()
        self._verdicts: OrderedDict[tuple[str, str, int], Verdict] = OrderedDict()
        self._max_cells = cells
        self._max_verdicts = verdicts

    def cell(self, cell_id: str) -> CellTotals:
        totals = self._cells.pop(cell_id, None) or CellTotals()
        self._cells[cell_id] = totals
        while len(self._cells) > self._max_cells:
            self._cells.popitem(last=False)
        return totals

    def judge(
        self,
        key: tuple[str, str, int],
        channel: str,
        msg: Mapping[str, Any],
        limits: OutputLimits,
        gate: Gate,
    ) -> tuple[Verdict, bool]:
        """The verdict on ``msg`` and whether it is new (its cuts are to be audited)."""
        known = self._verdicts.get(key)
        if known is not None:
            return known, False
        verdict = judge_message(channel, msg, self.cell(cell_of(msg)), limits, gate)
        self._verdicts[key] = verdict
        while len(self._verdicts) > self._max_verdicts:
            self._verdicts.popitem(last=False)
        return verdict, True
