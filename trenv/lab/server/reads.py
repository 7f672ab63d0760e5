"""What a contents-API read may send to the browser: pure judgements over what was read.

The tornado side (trenv.lab.server.guards) reads, these decide. A file is judged by its
bytes (trenv.judge.files); a notebook by its cells (judged like a text file, outputs aside)
and its outputs (trenv.lab.server.notebooks).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from trenv.judge.files import FileLimits, FileVerdict, judge_file
from trenv.lab.server.decisions import Refusal, content_refusal, notebook_refusal
from trenv.lab.server.notebooks import Truncated, truncate_notebook, without_outputs
from trenv.lab.server.output_judge import OutputLimits


def model_bytes(model: dict[str, Any]) -> bytes | None:
    """The file's bytes in a contents model (text or base64), None when it has none."""
    content = model.get("content")
    if not isinstance(content, str):
        return None
    if model.get("format") == "base64":
        try:
            return base64.b64decode(content.encode("ascii"), validate=False)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            return content.encode("utf-8", "replace")
    return content.encode("utf-8")


def notebook_content_refusal(
    path: str, notebook: dict[str, Any], limits: FileLimits
) -> Refusal | None:
    """A notebook whose cells (sources, metadata, attachments) hold data is not opened."""
    verdict = judge_file(without_outputs(notebook).encode("utf-8"), limits)
    if verdict.kind == "data":
        return notebook_refusal(path, f"its cells (besides their outputs) hold {verdict.what}.")
    return None


def judge_notebook(
    path: str,
    notebook: dict[str, Any],
    files: FileLimits,
    outputs: OutputLimits,
    images_refusal: str | None,
) -> Refusal | Truncated:
    """The refusal when the notebook's cells hold data, else the notebook with its outputs
    above the caps withheld. Run off the event loop: a large notebook takes a moment."""
    refusal = notebook_content_refusal(path, notebook, files)
    if refusal is not None:
        return refusal
    return truncate_notebook(notebook, outputs, images_refusal=images_refusal)


def judge_file_read(
    path: str, data: bytes, files: FileLimits, outputs: OutputLimits
) -> Refusal | FileVerdict:
    """A file read through the contents API: the refusal, or the verdict that it is shown.
    A notebook read as a plain file would show its outputs in full, so it is refused when
    the notebook view would withhold any."""
    verdict = judge_file(data, files)
    if verdict.kind != "notebook":
        return content_refusal(path, verdict) or verdict
    try:
        notebook = json.loads(data)
    except ValueError:
        return verdict
    judged = judge_notebook(path, notebook, files, outputs, None)
    if isinstance(judged, Refusal):
        return judged
    withheld = sum(w.outputs for w in judged.withheld)
    if withheld:
        return notebook_refusal(
            path,
            f"read as a plain file, this notebook would show {withheld} outputs that the "
            "notebook view withholds (outputs above the limits).",
        )
    return verdict
