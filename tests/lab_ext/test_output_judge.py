"""The judgement of kernel messages on their way to the browser (pure: message dicts in).

Both sides: what a researcher displays in ordinary work passes untouched (the original
message goes, byte for byte), and each way of printing a dataset is cut, with a marker in
the same cell and an audit detail that holds no data. The outputs are made the way the
kernel makes them (IPython's display formatter, pandas, matplotlib, statsmodels).
"""

from __future__ import annotations

import base64
import io
import json
import uuid
import zlib
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import pytest
from IPython.core.formatters import DisplayFormatter

from trenv.disclosure.policy import load_policy
from trenv.kernel_defaults import PANDAS_DISPLAY
from trenv.lab.server.output_judge import (
    CellTotals,
    KernelCells,
    OutputLimits,
    Verdict,
    judge_message,
    skeleton,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the backend

LIMITS = OutputLimits.from_setting(load_policy("trenv-default").egress)
FORMAT = DisplayFormatter()


class Gate:
    """A stand-in for the egress meter's gate."""

    def __init__(self, text: bool = True, image: bool = True) -> None:
        self.open = {"text": text, "image": image}

    def allowed(self, kind: str) -> bool:
        return self.open[kind]

    def stopped_message(self, kind: str) -> str:
        return f"[trenv] {kind} output withheld until 14:00 UTC: hard level reached"


def message(
    msg_type: str, content: dict[str, Any], cell: str = "cell-1", **extra: Any
) -> dict[str, Any]:
    header = {
        "msg_id": uuid.uuid4().hex,
        "msg_type": msg_type,
        "session": uuid.uuid4().hex,
        "username": "rosa",
        "date": "2025-01-01T12:00:00.000000Z",
        "version": "5.3",
    }
    parent = {"msg_id": cell, "msg_type": "execute_request", "session": "s", "version": "5.3"}
    msg = {"header": header, "parent_header": parent, "metadata": {}, "content": content}
    return {**msg, "buffers": [], **extra}


def judge(msg: dict[str, Any], cell: CellTotals | None = None, gate: Gate | None = None) -> Verdict:
    channel = "shell" if msg["header"]["msg_type"].endswith("_reply") else "iopub"
    return judge_message(channel, msg, cell or CellTotals(), LIMITS, gate or Gate())


def display(obj: Any, cell: str = "cell-1") -> dict[str, Any]:
    data, metadata = FORMAT.format(obj)
    return message("display_data", {"data": data, "metadata": metadata, "transient": {}}, cell)


def stream(text: str, cell: str = "cell-1") -> dict[str, Any]:
    return message("stream", {"name": "stdout", "text": text}, cell)


def convictions(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "person": [uuid.UUID(int=int(rng.integers(2**62))).hex for _ in range(n)],
            "offence": rng.choice(["fraud", "theft", "assault", "drugs"], n),
            "court": rng.choice(["Amsterdam", "Utrecht", "Zwolle"], n),
            "sentence_months": rng.integers(0, 60, n),
            "year": rng.integers(2015, 2024, n),
        }
    )


def parquet_bytes(n: int = 7021) -> bytes:
    out = io.BytesIO()
    convictions(n).to_parquet(out)
    return out.getvalue()


def png_of_figure() -> str:
    fig, ax = plt.subplots()
    ax.plot(np.random.default_rng(2).normal(size=500).cumsum())
    ax.set_title("Reoffending by year")
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return base64.b64encode(out.getvalue()).decode()


def passed(verdict: Verdict) -> bool:
    return verdict.original and not verdict.cuts and not verdict.send


def cut_text(verdict: Verdict) -> str:
    return json.dumps([m["content"] for _, m in verdict.send])


# --- normal work passes untouched ---------------------------------------------------------


def test_a_dataframe_of_hundreds_of_rows_with_pandas_defaults_passes() -> None:
    df = convictions(400)
    assert passed(judge(message("execute_result", {**_bundle(df), "execution_count": 3})))


def _bundle(obj: Any) -> dict[str, Any]:
    data, metadata = FORMAT.format(obj)
    return {"data": data, "metadata": metadata}


@pytest.mark.parametrize("rows", [41, 48, 55, 60])
def test_a_frame_of_41_to_60_rows_passes_with_the_kernels_display_defaults(rows: int) -> None:
    df = convictions(rows)
    with pd.option_context(*[x for kv in PANDAS_DISPLAY.items() for x in kv]):
        assert passed(judge(display(df)))


def test_without_the_kernel_defaults_a_frame_of_55_rows_would_be_cut() -> None:
    # Why the image sets max_rows = 40: pandas' own default (60) shows 55 rows in full.
    with pd.option_context("display.max_rows", 60):
        verdict = judge(display(convictions(55)))
    assert verdict.cuts and verdict.cuts[0]["rule"] == "table-rows"


def test_a_matplotlib_png_figure_passes_and_counts_as_image() -> None:
    png = png_of_figure()
    content = {
        "data": {"image/png": png, "text/plain": "<Figure size 640x480 with 1 Axes>"},
        "metadata": {"image/png": {"width": 640, "height": 480}},
    }
    verdict = judge(message("display_data", content))
    assert passed(verdict)
    assert verdict.image_chars == len(png)


def test_a_statsmodels_summary_passes() -> None:
    import statsmodels.api as sm

    df = convictions(500)
    x = sm.add_constant(pd.get_dummies(df[["offence", "court"]], drop_first=True, dtype=float))
    fit = sm.OLS(df["sentence_months"].astype(float), x.assign(year=df["year"])).fit()
    assert passed(judge(display(fit.summary())))


def test_a_short_print_and_an_error_traceback_pass() -> None:
    assert passed(judge(stream("mean sentence: 14.2 months\n")))
    traceback = [
        "\x1b[0;31m---------------------------------------------------------------------------"
        "\x1b[0m",
        "\x1b[0;31mKeyError\x1b[0m                                  Traceback (most recent call"
        " last)",
        "Cell \x1b[0;32mIn[4], line 1\x1b[0m\n\x1b[0;32m----> 1\x1b[0m df[\x1b[38;5;124m"
        "'sentnce'\x1b[39m]\x1b[38;5;241m.\x1b[39mmean()",
        "\x1b[0;31mKeyError\x1b[0m: 'sentnce'",
    ]
    error = {"ename": "KeyError", "evalue": "'sentnce'", "traceback": traceback}
    assert passed(judge(message("error", error)))


def test_a_progress_loop_of_100_prints_in_one_cell_passes() -> None:
    cell = CellTotals()
    for i in range(100):
        verdict = judge(stream(f"epoch {i + 1}/100, loss={1 / (i + 1):.4f}\n"), cell)
        assert passed(verdict), (i, verdict.cuts)


def test_protocol_messages_pass_untouched() -> None:
    for msg in (
        message("status", {"execution_state": "busy"}),
        message("execute_input", {"code": "df.groupby('offence').size()", "execution_count": 4}),
        message("execute_reply", {"status": "ok", "execution_count": 4, "payload": []}),
        message("comm_open", {"comm_id": "c1", "target_name": "jupyter.widget", "data": {}}),
        message("clear_output", {"wait": True}),
    ):
        assert passed(judge(msg)), msg["header"]["msg_type"]


def test_a_numpy_completion_with_its_types_passes() -> None:
    # np.<Tab>: about 500 matches, each with a type and a signature (57 KB from ipykernel).
    names = sorted(n for n in dir(np) if not n.startswith("_"))
    types = [
        {"start": 3, "end": 3, "text": n, "type": "function", "signature": "(a, axis=None)"}
        for n in names
    ]
    content = {
        "status": "ok",
        "matches": names,
        "cursor_start": 3,
        "cursor_end": 3,
        "metadata": {"_jupyter_types_experimental": types},
    }
    assert passed(judge(message("complete_reply", content)))


def test_a_docstring_passes_in_inspect_reply() -> None:
    data = {"text/plain": pd.DataFrame.merge.__doc__ or ""}
    content = {"status": "ok", "found": True, "data": data, "metadata": {}}
    assert passed(judge(message("inspect_reply", content)))


# --- attacks are cut ------------------------------------------------------------------------


def assert_cut(verdict: Verdict, rule: str | None = None) -> str:
    assert not verdict.original, "the original went out"
    assert verdict.cuts, "no audit detail"
    if rule is not None:
        assert verdict.cuts[0]["rule"] == rule, verdict.cuts
    text = cut_text(verdict)
    assert "withheld" in text and "tre.save" in text and "audit event" in text
    return text


def test_base64_of_a_parquet_file_in_one_print_is_cut() -> None:
    data = parquet_bytes()
    msg = stream(str(base64.b64encode(data)) + "\n")
    verdict = judge(msg)
    text = assert_cut(verdict, "blob")
    assert base64.b64encode(data)[:64].decode() not in text
    # Same message type, same cell: the notebook shows the marker where the output was.
    ((channel, out),) = verdict.send
    assert channel == "iopub" and out["header"]["msg_type"] == "stream"
    assert out["parent_header"]["msg_id"] == "cell-1"
    # The audit detail says which rule and how much, never what.
    assert all(not isinstance(v, str) or len(v) < 100 for v in verdict.cuts[0].values())


def test_the_same_split_over_many_prints_in_one_cell_is_cut() -> None:
    text = base64.b64encode(parquet_bytes()).decode()
    cell = CellTotals()
    verdicts = [judge(stream(text[i : i + 900] + "\n"), cell) for i in range(0, len(text), 900)]
    sent = [v for v in verdicts if v.original]
    assert 0 < len(sent) <= 5  # a few lines of base64 at most, then the cell is cut
    first_cut = next(v for v in verdicts if not v.original)
    assert_cut(first_cut, "cell-blob")
    assert all(not v.original and not v.send for v in verdicts[len(sent) + 1 :])


def test_a_csv_of_300_rows_is_cut() -> None:
    assert_cut(judge(stream(convictions(300).to_csv())), "table-rows")


def test_to_string_of_300_rows_is_cut() -> None:
    assert_cut(judge(stream(convictions(300).to_string() + "\n")), "table-rows")


def test_an_html_table_of_300_rows_is_cut() -> None:
    from IPython.display import HTML

    verdict = judge(display(HTML(convictions(300).to_html())))
    assert_cut(verdict, "table-rows")
    ((_, out),) = verdict.send
    assert out["header"]["msg_type"] == "display_data"
    assert list(out["content"]["data"]) == ["text/plain"]


def test_hex_in_a_print_is_cut() -> None:
    assert_cut(judge(stream(parquet_bytes(300).hex() + "\n")), "blob")


def test_a_bytes_repr_is_cut() -> None:
    assert_cut(judge(stream(repr(parquet_bytes(300)) + "\n")), "blob")


def test_a_widget_message_carrying_base64_is_cut_and_the_comm_message_dropped() -> None:
    b64 = base64.b64encode(parquet_bytes(300)).decode()
    state = {"method": "update", "state": {"value": b64}, "buffer_paths": []}
    verdict = judge(message("comm_msg", {"comm_id": "w1", "data": state}))
    assert_cut(verdict, "blob")
    ((channel, out),) = verdict.send
    assert channel == "iopub" and out["header"]["msg_type"] == "stream"
    assert b64[:64] not in json.dumps(out)


def test_a_widget_binary_buffer_with_a_file_is_cut() -> None:
    msg = message("comm_msg", {"comm_id": "w1", "data": {"method": "update", "state": {}}})
    msg["buffers"] = [parquet_bytes(300)]
    assert_cut(judge(msg))


def test_a_one_megabyte_print_is_cut() -> None:
    assert_cut(judge(stream("x" * 1_000_000)), "size")


def test_later_output_of_a_cut_cell_stays_cut() -> None:
    cell = CellTotals()
    assert_cut(judge(stream(convictions(300).to_csv()), cell))
    assert judge(stream("a harmless line\n"), cell) == Verdict(original=False)
    assert judge(display(convictions(5)), cell) == Verdict(original=False)
    # The cell's status and reply still reach the browser: the notebook must not hang.
    assert passed(judge(message("status", {"execution_state": "idle"}), cell))
    assert passed(judge(message("execute_reply", {"status": "ok", "execution_count": 1}), cell))
    # Another cell is not affected.
    assert passed(judge(stream("a harmless line\n", cell="cell-2")))


def test_a_docstring_set_to_a_dataset_is_cut_from_inspect_reply() -> None:
    data = {"text/plain": convictions(300).to_csv()}
    verdict = judge(message("inspect_reply", {"status": "ok", "found": True, "data": data}))
    text = assert_cut(verdict, "table-rows")
    (_, marker), (_, reply) = verdict.send
    assert reply["content"] == {"status": "ok", "found": False, "data": {}, "metadata": {}}
    assert marker["header"]["msg_type"] == "stream" and "fraud" not in text


def test_a_page_payload_with_a_dataset_is_cut_from_execute_reply() -> None:
    payload = [{"source": "page", "data": {"text/plain": convictions(300).to_csv()}, "start": 0}]
    content = {"status": "ok", "execution_count": 7, "payload": payload, "user_expressions": {}}
    verdict = judge(message("execute_reply", content))
    assert_cut(verdict, "table-rows")
    _, (_, reply) = verdict.send
    assert reply["content"]["payload"] == [] and reply["content"]["execution_count"] == 7


def test_an_execute_input_echo_with_a_dataset_is_blanked_silently() -> None:
    code = "x = '''" + convictions(300).to_csv() + "'''"
    verdict = judge(message("execute_input", {"code": code, "execution_count": 2}))
    assert verdict.cuts and verdict.cuts[0]["rule"] == "table-rows"
    ((_, out),) = verdict.send
    assert out["content"] == {"code": "", "execution_count": 2}


def test_completions_carrying_a_dataset_are_cut() -> None:
    matches = convictions(300).to_csv().splitlines()
    content = {"status": "ok", "matches": matches, "cursor_start": 0, "cursor_end": 0}
    verdict = judge(message("complete_reply", content))
    assert_cut(verdict, "table-rows")
    assert verdict.send[1][1]["content"]["matches"] == []


def test_a_forged_status_message_carrying_data_is_reduced_to_its_skeleton() -> None:
    b64 = base64.b64encode(parquet_bytes(300)).decode()
    verdict = judge(message("status", {"execution_state": "idle", "x": b64}))
    assert_cut(verdict, "blob")
    bare = verdict.send[1][1]
    assert bare["content"] == {"execution_state": "idle"} and bare["metadata"] == {}


def test_data_in_the_envelope_is_cut() -> None:
    msg = stream("ok\n")
    msg["header"]["username"] = "a" * 5000
    verdict = judge(msg)
    assert_cut(verdict, "envelope")
    assert len(json.dumps(verdict.send)) < 2000


def test_pseudonyms_listed_in_one_output_are_cut() -> None:
    ids = "\n".join(convictions(200)["person"])
    assert_cut(judge(stream(ids)), "pseudonyms")


# --- images ---------------------------------------------------------------------------------


def _png(pixels: np.ndarray, extra_chunks: bytes = b"") -> str:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    data = out.getvalue()
    if extra_chunks:  # before IEND
        data = data[:-12] + extra_chunks + data[-12:]
    return base64.b64encode(data).decode()


def _chunk(ctype: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(ctype + payload) & 0xFFFFFFFF
    return len(payload).to_bytes(4, "big") + ctype + payload + crc.to_bytes(4, "big")


def _image_message(mimetype: str, value: str) -> dict[str, Any]:
    return message("display_data", {"data": {mimetype: value, "text/plain": "<img>"}})


def test_a_parquet_file_packed_into_png_pixels_is_cut() -> None:
    data = parquet_bytes(3000)
    side = int(np.ceil(np.sqrt(len(data) / 3)))
    pixels = np.frombuffer(data.ljust(side * side * 3, b"\0"), np.uint8).reshape(side, side, 3)
    assert_cut(judge(_image_message("image/png", _png(pixels))), "image-packed")


def test_a_png_with_a_file_in_a_text_chunk_is_cut() -> None:
    figure = base64.b64decode(png_of_figure())
    chunk = _chunk(b"zTXt", b"data\x00\x00" + zlib.compress(parquet_bytes(300)))
    data = base64.b64encode(figure[:-12] + chunk + figure[-12:]).decode()
    assert_cut(judge(_image_message("image/png", data)), "image-bytes")


def test_an_image_format_that_is_not_checked_is_cut() -> None:
    gif = base64.b64encode(b"GIF89a" + parquet_bytes(300)).decode()
    assert_cut(judge(_image_message("image/gif", gif)), "image-format")


# --- the meter ------------------------------------------------------------------------------


def test_past_the_hard_level_output_is_replaced_once_per_cell_and_protocol_passes() -> None:
    gate = Gate(text=False)
    cell = CellTotals()
    first = judge(stream("mean 14.2\n"), cell, gate)
    assert not first.original and not first.cuts  # withheld, not cut: the meter audits it
    assert "hard level" in cut_text(first)
    assert judge(stream("more\n"), cell, gate) == Verdict(original=False)
    status = judge(message("status", {"execution_state": "idle"}), cell, gate)
    assert status.send[0][1]["content"] == {"execution_state": "idle"}


def test_images_still_go_when_only_text_is_stopped() -> None:
    png = png_of_figure()
    msg = message("display_data", {"data": {"image/png": png, "text/plain": "<Figure>"}})
    verdict = judge(msg, gate=Gate(text=False))
    ((_, out),) = verdict.send
    assert out["content"]["data"] == {"image/png": png}


def test_images_past_their_hard_level_are_withheld() -> None:
    msg = message("display_data", {"data": {"image/png": png_of_figure()}})
    verdict = judge(msg, gate=Gate(image=False))
    assert "image output withheld" in cut_text(verdict)
    assert "image/png" not in cut_text(verdict)


# --- cells across connections -----------------------------------------------------------------


def _through(kernel: KernelCells, msg: dict[str, Any]) -> tuple[Verdict, bool]:
    key = ("iopub", msg["header"]["msg_id"], zlib.crc32(json.dumps(msg["content"]).encode()))
    return kernel.judge(key, "iopub", msg, LIMITS, Gate())


def test_a_reconnect_does_not_reset_a_running_cell() -> None:
    kernel = KernelCells()  # shared by every connection to the kernel
    for _ in range(2):
        verdict, _ = _through(kernel, stream(convictions(20).to_csv(header=False), cell="c"))
        assert passed(verdict)
    # The browser reconnects (a new websocket, the same kernel): the cell goes on at 40 rows.
    assert kernel.cell("c").rows == 40
    verdict, _ = _through(kernel, stream(convictions(20).to_csv(header=False), cell="c"))
    assert verdict.cuts and verdict.cuts[0]["rule"] == "cell-rows"


def test_two_tabs_on_one_kernel_get_one_verdict_and_one_audit_event() -> None:
    kernel = KernelCells()
    for _ in range(2):  # 40 rows: under the cell's 48 once, over it if counted twice
        msg = stream(convictions(20).to_csv(header=False), cell="c")
        first, new = _through(kernel, msg)
        again, repeated = _through(kernel, msg)  # the second tab receives the same message
        assert passed(first) and again is first and new and not repeated
    assert kernel.cell("c").rows == 40
    msg = stream(convictions(300).to_csv(), cell="d")
    (cut, new), (same, repeated) = _through(kernel, msg), _through(kernel, msg)
    assert cut.cuts and same is cut and new and not repeated  # both tabs see the marker


def test_a_reused_message_id_with_new_content_is_judged_anew() -> None:
    kernel = KernelCells()
    msg = stream("ok\n", cell="c")
    _through(kernel, msg)
    forged = {**msg, "content": {"name": "stdout", "text": convictions(300).to_csv()}}
    verdict, new = _through(kernel, forged)
    assert new and verdict.cuts


def test_skeletons_keep_what_the_notebook_needs() -> None:
    reply = message("execute_reply", {"status": "error", "execution_count": 9, "ename": "X"})
    assert skeleton(reply)["content"] == {  # type: ignore[index]
        "status": "error",
        "execution_count": 9,
        "payload": [],
        "user_expressions": {},
        "ename": "OutputWithheld",
        "evalue": "",
        "traceback": [],
    }
    assert skeleton(message("usage_reply", {"x": 1})) is None
