"""Notebooks on their way to the browser: outputs above the caps withheld, and put back on save.

Pure functions over nbformat 4 dictionaries (what the contents manager returns); the tornado
side is trenv.lab.server.guards. A notebook opens, but each output is judged as a kernel
message would be (trenv.judge.text under the policy's ``output_max_*``), and all its outputs
together may show at most ``cell_max_chars`` characters and ``cell_max_table_rows`` table
rows, and the pseudonyms and encoded data of one output, when it is opened: a notebook read
at once is one more output, and a notebook written by code can hold any number of outputs.
An output that may not be shown is replaced by a *marker*, a ``display_data`` output that
says what was withheld and why; images are kept and counted.

Saving from the browser sends the notebook back with the markers in it. Each marker names
the outputs it stands for by digest (``metadata.trenv_withheld.outputs``), and
:func:`restore_withheld` puts those outputs back from the file on disk, so a save never
destroys the real outputs. A marker whose outputs are no longer on disk (the file changed
meanwhile, or it was saved under another name) stays a marker, as text that says so.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import nbformat

from trenv.judge.text import TextMeasure, judge_measure, measure
from trenv.lab.server.output_judge import OutputLimits

MARKER_KEY = "trenv_withheld"  # in a marker output's metadata and the notebook's metadata
# A digest names an output, not its content: 96 bits, short enough to read as neither a
# pseudonym (32 hex) nor an encoded blob (64 characters) to any judge.
DIGEST_CHARS = 24
IMAGE_TYPES: frozenset[str] = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/svg+xml"}
)
WAY_OUT = (
    "The output is still in the notebook file and saving the notebook keeps it. Run the "
    "cell again to see what it shows now, look at a few rows (df.head()) or aggregates, and "
    "take results out through the airlock (tre.save, then the Outputs panel)."
)

Notebook = dict[str, Any]
Output = dict[str, Any]


@dataclass(frozen=True)
class Withheld:
    """Outputs of one cell replaced by one marker (no data: sizes and the rule)."""

    cell: int  # the cell's index
    rule: str  # blob, table-rows, pseudonyms, size, notebook-total, meter
    outputs: int
    chars: int


@dataclass
class Truncated:
    notebook: Notebook  # a copy: the contents manager's model is not changed
    withheld: list[Withheld] = field(default_factory=list)
    images: int = 0  # images kept
    image_chars: int = 0  # their size in the JSON (base64 or SVG text)


def output_digest(output: Output) -> str:
    """A digest of one output as the contents manager gives it (canonical JSON)."""
    canonical = json.dumps(output, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:DIGEST_CHARS]


def _joined(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return json.dumps(value, ensure_ascii=False)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def _texts_of(value: Any) -> list[str]:
    """A representation as text the judges read: a string as it is; JSON indented (one
    value a line, so records show as rows), and each of its strings that spans lines on
    its own (a CSV inside a JSON string is still a table)."""
    if isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    ):
        return [_joined(value)]
    texts = [json.dumps(value, ensure_ascii=False, indent=1)]
    texts.extend(s for s in _strings(value) if "\n" in s)
    return texts


def output_texts(output: Output) -> list[str]:
    """The text an output shows (every representation but images), its metadata included:
    what reaches the browser, whichever representation the front end picks."""
    kind = output.get("output_type")
    texts: list[str] = []
    if kind == "stream":
        texts.extend(_texts_of(output.get("text", "")))
    elif kind == "error":
        traceback = output.get("traceback") or []
        texts.append("\n".join([str(output.get("ename", "")), str(output.get("evalue", ""))]))
        texts.append("\n".join(str(line) for line in traceback))
    else:
        for mime, value in (output.get("data") or {}).items():
            if mime not in IMAGE_TYPES:
                texts.extend(_texts_of(value))
    metadata = output.get("metadata")
    if metadata:
        texts.extend(_texts_of(metadata))
    return [t for t in texts if t]


def output_image_chars(output: Output) -> tuple[int, int]:
    """(images, characters of image data) in one output."""
    data = output.get("data") or {}
    sizes = [len(_joined(v)) for mime, v in data.items() if mime in IMAGE_TYPES]
    return len(sizes), sum(sizes)


def is_marker(output: Any) -> bool:
    return (
        isinstance(output, dict)
        and output.get("output_type") == "display_data"
        and isinstance((output.get("metadata") or {}).get(MARKER_KEY), dict)
    )


def marker(digests: list[str], rule: str, reason: str) -> Output:
    count = "1 output" if len(digests) == 1 else f"{len(digests)} outputs"
    text = f"[trenv] {count} withheld when this notebook was opened: {reason} {WAY_OUT}"
    return {
        "output_type": "display_data",
        "data": {"text/plain": text},
        "metadata": {MARKER_KEY: {"outputs": digests, "rule": rule}},
    }


def _total_reason(limits: OutputLimits) -> str:
    out = limits.output
    return (
        f"a notebook shows at most {limits.cell_max_chars:,} characters, "
        f"{limits.cell_max_table_rows} table rows, {out.max_pseudonyms} pseudonyms and "
        f"{out.max_blob_chars:,} characters of encoded data in all its outputs together when "
        "it is opened, and the outputs above this one used them up."
    )


@dataclass
class _Running:
    """What the outputs shown so far add up to."""

    chars: int = 0
    rows: int = 0
    pseudonyms: int = 0
    blob_chars: int = 0

    def plus(self, found: list[TextMeasure]) -> _Running:
        return _Running(
            self.chars + sum(m.chars for m in found),
            self.rows + max((max(m.table_rows, m.html_rows) for m in found), default=0),
            self.pseudonyms + max((m.pseudonyms for m in found), default=0),
            self.blob_chars + max((m.blob_chars for m in found), default=0),
        )

    def within(self, limits: OutputLimits) -> bool:
        return (
            self.chars <= limits.cell_max_chars
            and self.rows <= limits.cell_max_table_rows
            and self.pseudonyms <= limits.output.max_pseudonyms
            and self.blob_chars <= limits.output.max_blob_chars
        )


def _verdict(
    output: Output, limits: OutputLimits, total: _Running, images_refusal: str | None
) -> tuple[tuple[str, str] | None, _Running]:
    """((rule, reason) when ``output`` is withheld, else None; the running total after it).

    One output is judged as a kernel message is (each text representation under the output
    limits). All outputs together are one more output: a notebook written by code can hold
    any number of small ones, so pseudonyms and encoded data add up against the limits of one
    output, characters and table rows against those of one cell.
    """
    if images_refusal is not None and output_image_chars(output)[0]:
        return ("meter", images_refusal), total
    found = [measure(t) for t in output_texts(output)]
    for one in found:
        cut = judge_measure(one, limits.output)
        if cut is not None:
            return (cut.rule, cut.reason), total
    after = total.plus(found)
    if not after.within(limits):
        return ("notebook-total", _total_reason(limits)), total
    return None, after


@dataclass
class _Group:
    """Consecutive withheld outputs of one cell under the same rule: they get one marker."""

    rule: str
    reason: str
    digests: list[str] = field(default_factory=list)
    chars: int = 0


def truncate_notebook(
    notebook: Notebook, limits: OutputLimits, *, images_refusal: str | None = None
) -> Truncated:
    """A copy of ``notebook`` whose outputs above the caps are replaced by markers.

    ``images_refusal``: when images may not be sent (the meter's hour is used up), the
    message that replaces outputs holding images; otherwise they are kept and counted.
    Markers already in the file are judged like any output (their text is short; one made
    up to carry data is withheld like any other).
    """
    result = Truncated(copy.deepcopy(notebook))
    total = _Running()
    for index, cell in enumerate(result.notebook.get("cells") or []):
        outputs = cell.get("outputs")
        if not isinstance(outputs, list) or not outputs:
            continue
        kept: list[Output] = []
        group: _Group | None = None

        def close(group: _Group | None, index: int = index, kept: list[Output] = kept) -> None:
            if group is not None:
                kept.append(marker(group.digests, group.rule, group.reason))
                result.withheld.append(Withheld(index, group.rule, len(group.digests), group.chars))

        for output in outputs:
            verdict, total = _verdict(output, limits, total, images_refusal)
            if verdict is None:
                close(group)
                group = None
                kept.append(output)
                images, image_chars = output_image_chars(output)
                result.images += images
                result.image_chars += image_chars
                continue
            if group is None or group.rule != verdict[0]:
                close(group)
                group = _Group(*verdict)
            group.digests.append(output_digest(output))
            group.chars += sum(len(t) for t in output_texts(output))
        close(group)
        cell["outputs"] = kept
    if result.withheld:
        metadata = result.notebook.setdefault("metadata", {})
        metadata[MARKER_KEY] = {
            "outputs": sum(w.outputs for w in result.withheld),
            "note": "outputs withheld on opening are put back from the file when it is saved",
        }
    return result


def _outputs(notebook: Notebook) -> Iterator[Output]:
    for cell in notebook.get("cells") or []:
        for output in cell.get("outputs") or []:
            if isinstance(output, dict):
                yield output


@dataclass(frozen=True)
class Restored:
    notebook: Notebook
    restored: int  # markers replaced by the outputs they stand for
    unresolved: int  # markers kept: their outputs are not in the file on disk


def restore_withheld(saved: Notebook, on_disk: Notebook | None) -> Restored:
    """``saved`` (from the browser) with each marker replaced by the outputs it stands for,
    taken from ``on_disk``; the lab's note in the notebook's metadata is dropped."""
    result = copy.deepcopy(saved)
    (result.get("metadata") or {}).pop(MARKER_KEY, None)
    by_digest = {output_digest(o): o for o in _outputs(on_disk or {}) if not is_marker(o)}
    restored = unresolved = 0
    for cell in result.get("cells") or []:
        outputs = cell.get("outputs")
        if not isinstance(outputs, list):
            continue
        rebuilt: list[Any] = []
        for output in outputs:
            if not is_marker(output):
                rebuilt.append(output)
                continue
            digests = output["metadata"][MARKER_KEY].get("outputs")
            originals = [by_digest.get(d) for d in digests] if isinstance(digests, list) else []
            if originals and all(o is not None for o in originals):
                rebuilt.extend(copy.deepcopy(originals))
                restored += 1
            else:
                rebuilt.append(output)
                unresolved += 1
        cell["outputs"] = rebuilt
    return Restored(result, restored, unresolved)


def _cell_digest(cell: dict[str, Any]) -> str:
    # What the researcher writes: the source, its attachments and metadata (not the
    # execution count, which changes with every run).
    keep = {k: cell.get(k) for k in ("cell_type", "source", "attachments", "metadata")}
    return output_digest(keep)


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


def as_written(notebook: Notebook) -> Notebook:
    """``notebook`` as the contents manager would read it back after writing it (nbformat's
    line splitting and joining), so that what the browser sends compares with the file."""
    node = nbformat.from_dict(notebook)
    return dict(nbformat.reads(nbformat.writes(node, nbformat.NO_CONVERT), nbformat.NO_CONVERT))


def new_bytes(saved: Notebook, on_disk: Notebook | None) -> int:
    """Bytes of ``saved`` that are not in ``on_disk``: new or edited cells and outputs that
    the file does not hold yet. What a notebook save brings in (autosaves of an unchanged
    notebook bring nothing; a notebook of new content counts in full)."""
    disk = on_disk or {}
    cells = {_cell_digest(c) for c in disk.get("cells") or [] if isinstance(c, dict)}
    outputs = {output_digest(o) for o in _outputs(disk)}
    total = 0
    for cell in saved.get("cells") or []:
        if not isinstance(cell, dict):
            continue
        if _cell_digest(cell) not in cells:
            total += _size({k: v for k, v in cell.items() if k != "outputs"})
        for output in cell.get("outputs") or []:
            if output_digest(output) not in outputs:
                total += _size(output)
    if saved.get("metadata") != disk.get("metadata"):
        total += _size(saved.get("metadata"))
    return total


def without_outputs(notebook: Notebook) -> str:
    """The notebook's text besides its outputs (sources, attachments that are not images,
    metadata), to be judged like a text file: a notebook written by code can hide a
    dataset in a markdown cell as well as in an output."""
    parts = [json.dumps(notebook.get("metadata") or {}, ensure_ascii=False)]
    for cell in notebook.get("cells") or []:
        if not isinstance(cell, dict):
            continue
        parts.append(_joined(cell.get("source", "")))
        if cell.get("metadata"):
            parts.append(json.dumps(cell["metadata"], ensure_ascii=False))
        for bundle in (cell.get("attachments") or {}).values():
            if isinstance(bundle, dict):
                parts.extend(_joined(v) for m, v in bundle.items() if m not in IMAGE_TYPES)
    return "\n".join(parts)


def attachment_image_chars(notebook: Notebook) -> int:
    """Characters of images attached to markdown cells (pasted figures): counted as images."""
    total = 0
    for cell in notebook.get("cells") or []:
        if not isinstance(cell, dict):
            continue
        for bundle in (cell.get("attachments") or {}).values():
            if isinstance(bundle, dict):
                total += sum(len(_joined(v)) for m, v in bundle.items() if m in IMAGE_TYPES)
    return total
