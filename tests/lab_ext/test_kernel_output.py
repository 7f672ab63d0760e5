"""Kernel output judged on its way to the browser, in a real jupyter_server with a real
IPython kernel, over the kernel websocket in both protocols (v1, as JupyterLab 4 speaks it,
and the legacy JSON one).

What a script holding the researcher's session would read off the socket is what is
asserted: ordinary work arrives untouched; a dataset printed in any of the usual ways does
not (fewer than a handful of its rows can be rebuilt), a marker says why in the same cell,
and an ``egress.cut`` audit event without data reaches the trenv API.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests

from tests.support.kernel_ws import V1, KernelSocket, Received
from tests.support.lab_server import BROWSER_TOKEN, Lab, auth, running_lab

ROOT = Path(__file__).resolve().parents[2]
KERNEL_CONFIG = ROOT / "trenv/lab/jupyter-config/ipython/ipython_kernel_config.json"
ROWS = 7021
DUMP = "import pandas as pd\ndf = pd.read_parquet('/data/convictions.parquet')\n"


def convictions(n: int = ROWS) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "case": [f"C{100000 + i}" for i in range(n)],
            "offence": rng.choice(["fraud", "theft", "assault", "drugs", "burglary"], n),
            "court": rng.choice(["Amsterdam", "Utrecht", "Zwolle", "Arnhem"], n),
            "sentence_months": rng.integers(0, 60, n),
            "year": rng.integers(2015, 2024, n),
        }
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("kernel-output")
    (root / "data").mkdir()
    convictions().to_parquet(root / "data" / "convictions.parquet")
    # The image installs the kernel's display defaults into $PREFIX/etc/ipython; here the
    # same file goes into the kernel's profile directory.
    ipython = root / "ipython" / "profile_default"
    ipython.mkdir(parents=True)
    (ipython / "ipython_kernel_config.json").write_text(KERNEL_CONFIG.read_text())
    saved = os.environ.get("IPYTHONDIR")
    os.environ["IPYTHONDIR"] = str(root / "ipython")
    try:
        with running_lab(root, policy="trenv-default") as running:
            # /data in the kernel's code is this test's data directory.
            yield running
    finally:
        if saved is None:
            os.environ.pop("IPYTHONDIR", None)
        else:
            os.environ["IPYTHONDIR"] = saved


def open_kernel(lab: Lab, protocol: str | None) -> tuple[KernelSocket, str]:
    reply = requests.post(f"{lab.url}/api/kernels", headers=auth(), json={"name": "python3"})
    assert reply.status_code == 201, reply.text
    kernel_id = reply.json()["id"]
    ws_url = lab.url.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels"
    socket = KernelSocket(ws_url, [f"Authorization: token {BROWSER_TOKEN}"], protocol)
    data = json.dumps(str(lab.data))
    socket.execute(f"import os; os.chdir({json.dumps(str(lab.work))}); DATA = {data}")
    return socket, kernel_id


@pytest.fixture(scope="module", params=[V1, None], ids=["v1", "legacy"])
def kernel(request: pytest.FixtureRequest, lab: Lab) -> Iterator[KernelSocket]:
    socket, kernel_id = open_kernel(lab, request.param)
    try:
        yield socket
    finally:
        socket.close()
        requests.delete(f"{lab.url}/api/kernels/{kernel_id}", headers=auth(), timeout=30)


def run(kernel: KernelSocket, code: str) -> Received:
    # The kernel reads the test's data directory where the container has /data.
    return kernel.execute(code.replace("'/data/", "DATA + '/"))


def recovered_rows(text: str) -> int:
    """Rows of the dataset a script could rebuild from ``text``: its case numbers."""
    import re

    return len(set(re.findall(r"C1\d{5}", text)))


def withheld(out: Received) -> bool:
    text = out.text
    return "withheld" in text and "tre.save" in text


def cut_events(lab: Lab, after: int = 0) -> list[dict[str, Any]]:
    events = [e for r in lab.api.reports for e in r.events if e.action == "egress.cut"]
    return [e.detail for e in events[after:]]


# --- normal work passes untouched ---------------------------------------------------------


def test_a_dataframe_of_hundreds_of_rows_is_shown_as_pandas_shows_it(
    kernel: KernelSocket,
) -> None:
    out = run(kernel, DUMP + "df.head(300)")
    (result,) = out.of_type("execute_result")
    assert "300 rows \u00d7 5 columns" in result["content"]["data"]["text/html"]
    assert "<table" in result["content"]["data"]["text/html"] and not withheld(out)


def test_the_kernel_shows_a_frame_of_55_rows_truncated_so_it_is_not_cut(
    kernel: KernelSocket,
) -> None:
    out = run(kernel, DUMP + "print(pd.options.display.max_rows)\ndf.head(55)")
    assert out.stdout.strip() == "40"  # the image's kernel configuration is in force
    (result,) = out.of_type("execute_result")
    assert "55 rows \u00d7 5 columns" in result["content"]["data"]["text/html"]
    assert not withheld(out) and recovered_rows(out.text) <= 12


def test_a_matplotlib_figure_arrives_as_png(kernel: KernelSocket) -> None:
    out = run(
        kernel,
        "import matplotlib.pyplot as plt\nplt.plot(range(10), [x * x for x in range(10)])\n"
        "plt.title('reoffending'); plt.show()",
    )
    (figure,) = out.of_type("display_data")
    png = base64.b64decode(figure["content"]["data"]["image/png"])
    assert png.startswith(b"\x89PNG") and len(png) > 5000 and not withheld(out)


def test_a_statsmodels_summary_arrives(kernel: KernelSocket) -> None:
    out = run(
        kernel,
        DUMP + "import statsmodels.formula.api as smf\n"
        "smf.ols('sentence_months ~ C(offence) + year', data=df).fit().summary()",
    )
    (result,) = out.of_type("execute_result")
    assert "OLS Regression Results" in result["content"]["data"]["text/plain"]
    assert not withheld(out)


def test_a_short_print_and_an_error_traceback_arrive(kernel: KernelSocket) -> None:
    assert run(kernel, "print('mean sentence', 14.2)").stdout == "mean sentence 14.2\n"
    out = run(kernel, DUMP + "df['sentnce']")
    (error,) = out.of_type("error")
    assert error["content"]["ename"] == "KeyError"
    assert any("sentnce" in line for line in error["content"]["traceback"])


@pytest.mark.parametrize("pause", [0, 0.01], ids=["in-one-go", "paced"])
def test_a_progress_loop_of_100_prints_arrives_whole(kernel: KernelSocket, pause: float) -> None:
    out = run(
        kernel,
        "import time\nfor i in range(100):\n"
        f"    print(f'epoch {{i + 1}}/100, loss={{1 / (i + 1):.4f}}'); time.sleep({pause})",
    )
    lines = out.stdout.splitlines()
    assert len(lines) == 100 and lines[-1] == "epoch 100/100, loss=0.0100"
    assert not withheld(out)


def test_completions_and_help_arrive(kernel: KernelSocket) -> None:
    run(kernel, "import numpy as np")
    reply = kernel.request("shell", "complete_request", {"code": "np.", "cursor_pos": 3})
    (complete,) = reply.of_type("complete_reply")
    assert len(complete["content"]["matches"]) > 300
    reply = kernel.request(
        "shell", "inspect_request", {"code": "np.mean", "cursor_pos": 7, "detail_level": 0}
    )
    (inspect,) = reply.of_type("inspect_reply")
    assert inspect["content"]["found"] and "average" in inspect["content"]["data"]["text/plain"]


# --- attacks are cut ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "import base64\nprint(base64.b64encode(open('/data/convictions.parquet','rb').read()))",
        "import base64, time\nb = base64.b64encode(open('/data/convictions.parquet','rb')"
        ".read()).decode()\nfor i in range(0, len(b), 900):\n    print(b[i:i + 900])"
        "\n    time.sleep(0.002)",
        DUMP + "print(df.head(300).to_csv())",
        DUMP + "print(df.head(300).to_string())",
        DUMP + "from IPython.display import HTML, display\ndisplay(HTML(df.head(300).to_html()))",
        "print(open('/data/convictions.parquet','rb').read().hex())",
        "print(open('/data/convictions.parquet','rb').read()[:20000])",
        DUMP + "import time\nfor i in range(0, 400, 20):\n"
        "    print(df.iloc[i:i + 20].to_csv(header=False)); time.sleep(0.25)",
        DUMP + "print((df.to_csv() * 5)[:1_000_000])",
    ],
    ids=["base64", "base64-split", "csv", "to_string", "html", "hex", "bytes", "chunks", "1MB"],
)
def test_a_dataset_printed_does_not_reach_the_browser(
    kernel: KernelSocket, lab: Lab, code: str
) -> None:
    before = len(cut_events(lab))
    out = run(kernel, code)
    assert withheld(out), out.text[:300]
    assert recovered_rows(out.text) < 50
    assert "UEFSMQ" not in out.text  # base64 of the parquet magic, PAR1
    # The marker stands in the cell where the output was, and the cell still finishes.
    marker = next(m for _, m in out.messages if "withheld" in json.dumps(m["content"]))
    assert marker["parent_header"]["msg_id"] == out.messages[0][1]["parent_header"]["msg_id"]
    assert out.of_type("execute_reply") and out.of_type("status")
    found = lab.api.wait_for(lambda: cut_events(lab, before))
    assert found, "no egress.cut audit event reached the trenv API"
    assert all(recovered_rows(json.dumps(d)) == 0 for d in found)  # no data in the audit


def test_a_widget_message_carrying_base64_does_not_reach_the_browser(
    kernel: KernelSocket,
) -> None:
    out = run(
        kernel,
        "import base64\nfrom comm import create_comm\n"
        "c = create_comm(target_name='trenv-test', data={})\n"
        "c.send({'value': base64.b64encode(open('/data/convictions.parquet','rb').read()"
        "[:30000]).decode()})\n"
        "c.send({}, buffers=[open('/data/convictions.parquet','rb').read()[:30000]])",
    )
    assert not out.of_type("comm_msg"), "a comm message with the data went out"
    assert withheld(out) and "UEFSMQ" not in out.text


def test_a_docstring_set_to_the_dataset_does_not_reach_the_browser(
    kernel: KernelSocket,
) -> None:
    run(kernel, DUMP + "def f():\n    pass\nf.__doc__ = df.head(300).to_csv()")
    out = kernel.request("shell", "inspect_request", {"code": "f", "cursor_pos": 1})
    (inspect,) = out.of_type("inspect_reply")
    assert inspect["content"]["found"] is False
    assert recovered_rows(out.text) == 0 and withheld(out)


def test_the_meter_past_its_hard_level_withholds_output_but_not_the_protocol(
    lab: Lab,
) -> None:
    socket, kernel_id = open_kernel(lab, V1)
    try:
        lab.api.text_stopped = True
        reports = len(lab.api.reports)
        socket.execute("x = 1")
        assert lab.api.wait_for(lambda: len(lab.api.reports) > reports)  # the meter heard it
        out = socket.execute("print('mean sentence', 14.2)")
        assert "stopped for this hour" in out.text and "14.2" not in out.text
        assert out.of_type("execute_reply")[0]["content"]["status"] == "ok"
    finally:
        lab.api.text_stopped = False
        reports = len(lab.api.reports)
        socket.execute("x = 2")  # bytes to report: the answer says the hour is fine again
        lab.api.wait_for(lambda: len(lab.api.reports) > reports)
        socket.close()
        requests.delete(f"{lab.url}/api/kernels/{kernel_id}", headers=auth(), timeout=30)


def test_every_byte_sent_is_counted_by_the_meter(lab: Lab) -> None:
    socket, kernel_id = open_kernel(lab, V1)
    try:
        time.sleep(2.5)  # let earlier counts be reported
        before = {k: _counted(lab, k) for k in ("text", "image")}
        text = socket.execute("print('x' * 50000)")
        image = socket.execute("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3]); plt.show()")
        png = len(image.of_type("display_data")[0]["content"]["data"]["image/png"])
        sent = text.frame_bytes + image.frame_bytes  # what this client received for both

        def counted() -> tuple[int, int]:
            return _counted(lab, "text") - before["text"], _counted(lab, "image") - before["image"]

        lab.api.wait_for(lambda: sum(counted()) >= sent and counted()[1] >= png)
        texts, images = counted()
        assert images >= png and texts + images >= sent, (texts, images, sent, png)
    finally:
        socket.close()
        requests.delete(f"{lab.url}/api/kernels/{kernel_id}", headers=auth(), timeout=30)


def _counted(lab: Lab, kind: str) -> int:
    with lab.api.lock:
        return sum(
            c.bytes
            for r in lab.api.reports
            for c in r.counts
            if c.channel == "kernel" and c.kind == kind
        )


def test_configuration_cannot_swap_the_judged_connection_out(tmp_path: Path) -> None:
    """A jupyter_server configuration naming jupyter_server's own connection class (here in
    the user's config directory) does not take effect: the extension sets ours after all
    configuration is read, and the kernel route is pinned to it."""
    (tmp_path / "data").mkdir()
    config = tmp_path / "home" / ".jupyter"
    config.mkdir(parents=True)
    plain = "jupyter_server.services.kernels.connection.channels.ZMQChannelsWebsocketConnection"
    (config / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"kernel_websocket_connection_class": plain}})
    )
    with running_lab(tmp_path, policy="trenv-default") as other:
        socket, kernel_id = open_kernel(other, V1)
        try:
            out = socket.execute(
                "import base64; print(base64.b64encode(bytes(range(256)) * 40).decode())"
            )
            assert withheld(out)
        finally:
            socket.close()
            requests.delete(f"{other.url}/api/kernels/{kernel_id}", headers=auth(), timeout=30)
