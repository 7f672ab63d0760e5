"""What judging kernel output costs per message (trenv.lab.server.kernel_output).

Two figures:

1. per message, in process: the work jupyter_server does anyway for a v1 message (frame it)
   against what the judged connection does (unpack the parts, checksum, judge, frame), for
   the messages of ordinary work;
2. end to end: a real jupyter_server with and without trenv's extension, the same cells run
   over the v1 websocket, median time from execute_request to the kernel's idle status.

    .venv/bin/python benchmarks/kernel_output.py
"""

from __future__ import annotations

import base64
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the backend
import numpy as np
import pandas as pd
import requests
from IPython.core.formatters import DisplayFormatter
from jupyter_client.session import Session
from jupyter_server.services.kernels.connection.base import serialize_msg_to_ws_v1

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.kernel_ws import V1, KernelSocket  # noqa: E402
from tests.support.lab_server import running_lab  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from trenv.disclosure.policy import load_policy  # noqa: E402
from trenv.lab.server.output_judge import KernelCells, OutputLimits  # noqa: E402

LIMITS = OutputLimits.from_setting(load_policy("trenv-default").egress)
SESSION = Session(key=b"k")


class Gate:
    def allowed(self, kind: str) -> bool:
        return True

    def stopped_message(self, kind: str) -> str:
        return ""


def parts(msg_type: str, content: dict[str, Any], cell: str) -> list[bytes]:
    msg = SESSION.msg(msg_type, content, parent={"msg_id": cell, "msg_type": "execute_request"})
    return [SESSION.pack(msg[k]) for k in ("header", "parent_header", "metadata", "content")]


def samples() -> dict[str, list[bytes]]:
    fmt = DisplayFormatter()
    df = pd.DataFrame(np.random.default_rng(1).integers(0, 100, (300, 6)), columns=list("abcdef"))
    with pd.option_context("display.max_rows", 40, "display.min_rows", 10):
        frame, _ = fmt.format(df.head(40))
    fig, ax = plt.subplots()
    ax.plot(np.random.default_rng(2).normal(size=500).cumsum())
    out = io.BytesIO()
    fig.savefig(out, format="png")
    png = base64.b64encode(out.getvalue()).decode()
    names = sorted(n for n in dir(np) if not n.startswith("_"))
    types = [
        {"start": 3, "end": 3, "text": n, "type": "function", "signature": "(a)"} for n in names
    ]
    return {
        "status": parts("status", {"execution_state": "busy"}, "c"),
        "short print": parts("stream", {"name": "stdout", "text": "mean 14.2\n"}, "c"),
        "40-row frame": parts("execute_result", {"data": frame, "metadata": {}}, "c"),
        "PNG figure": parts("display_data", {"data": {"image/png": png}, "metadata": {}}, "c"),
        "50 KB print": parts("stream", {"name": "stdout", "text": "x" * 50_000}, "c"),
        "np. completion": parts(
            "complete_reply",
            {"matches": names, "metadata": {"_jupyter_types_experimental": types}},
            "c",
        ),
    }


def per_message() -> None:
    print("per message, in process (median of many; microseconds)")
    print(f"{'message':16} {'bytes':>8} {'framing':>10} {'judged':>10} {'added':>10}")
    for name, msg_parts in samples().items():
        n = 20 if name == "PNG figure" else 300
        base, judged = [], []
        for i in range(n):
            t0 = time.perf_counter()
            serialize_msg_to_ws_v1(msg_parts, "iopub")
            t1 = time.perf_counter()
            fields = ("header", "parent_header", "metadata", "content")
            msg = {k: SESSION.unpack(p) for k, p in zip(fields, msg_parts, strict=True)}
            msg["buffers"] = []
            checksum = 0
            for p in msg_parts:
                checksum = zlib.crc32(p, checksum)
            cells = KernelCells()
            cells.judge(("iopub", str(i), checksum), "iopub", msg, LIMITS, Gate())
            serialize_msg_to_ws_v1(msg_parts, "iopub")
            t2 = time.perf_counter()
            base.append(t1 - t0)
            judged.append(t2 - t1)
        b, j = statistics.median(base) * 1e6, statistics.median(judged) * 1e6
        size = sum(len(p) for p in msg_parts)
        print(f"{name:16} {size:8,} {b:10.1f} {j:10.1f} {j - b:10.1f}")


CELLS = {
    "print": "print('mean sentence', 14.2)",
    "40-row frame": "df.head(40)",
    "figure": "plt.plot(range(10)); plt.show()",
}


def _cells(ws_url: str, headers: list[str]) -> dict[str, float]:
    socket = KernelSocket(ws_url, headers, V1)
    socket.execute(
        "import pandas as pd, numpy as np, matplotlib.pyplot as plt\n"
        "pd.set_option('display.max_rows', 40)\n"
        "df = pd.DataFrame(np.random.default_rng(1).integers(0, 100, (300, 6)))"
    )
    times: dict[str, float] = {}
    for name, code in CELLS.items():
        runs = []
        for _ in range(30):
            t0 = time.perf_counter()
            socket.execute(code)
            runs.append(time.perf_counter() - t0)
        times[name] = statistics.median(runs) * 1e3
    socket.close()
    return times


def end_to_end() -> None:
    print("\nend to end, median ms from execute_request to idle (30 runs each)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "trenv" / "data").mkdir(parents=True)
        with running_lab(root / "trenv", "trenv-default") as lab:
            kernel = requests.post(
                f"{lab.url}/api/kernels", headers={"Authorization": "token browser-token"}, json={}
            ).json()
            ws = lab.url.replace("http://", "ws://") + f"/api/kernels/{kernel['id']}/channels"
            judged = _cells(ws, ["Authorization: token browser-token"])
        plain = _plain_server(root / "plain")
        try:
            url, token = plain
            kernel = requests.post(
                f"{url}/api/kernels", headers={"Authorization": f"token {token}"}, json={}
            ).json()
            ws = url.replace("http://", "ws://") + f"/api/kernels/{kernel['id']}/channels"
            base = _cells(ws, [f"Authorization: token {token}"])
        finally:
            _PLAIN[0].terminate()
    print(f"{'cell':14} {'plain':>8} {'trenv':>8} {'added':>8}")
    for name in CELLS:
        print(f"{name:14} {base[name]:8.1f} {judged[name]:8.1f} {judged[name] - base[name]:8.1f}")


_PLAIN: list[subprocess.Popen[bytes]] = []


def _plain_server(root: Path) -> tuple[str, str]:
    root.mkdir()
    port, token = free_port(), uuid.uuid4().hex
    env = {**os.environ, "HOME": str(root), "JUPYTER_RUNTIME_DIR": str(root / "rt")}
    cmd = [
        sys.executable, "-m", "jupyter_server", "--allow-root", "--no-browser",
        f"--port={port}", "--ip=127.0.0.1", f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}", "--ServerApp.jpserver_extensions={}",
    ]  # fmt: skip
    _PLAIN.append(
        subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if requests.get(f"{url}/api/status", params={"token": token}, timeout=1).ok:
                return url, token
        except requests.ConnectionError:
            time.sleep(0.2)
    raise RuntimeError("the plain jupyter_server did not start")


if __name__ == "__main__":
    per_message()
    end_to_end()
