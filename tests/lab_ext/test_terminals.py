"""Terminals: refused unless the project's profile allows them; judged when it does.

Pure tests of the refusal and of the stream judgement (frames and a rolling minute, with a
clock the test moves), then a real jupyter_server under each kind of profile: the routes
answer 403 ``terminals-off`` when the profile says no; a real terminal's ``cat`` of a data
file is cut and ``echo`` is not when it says yes.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import requests
import websocket

from tests.support.lab_server import BROWSER_TOKEN, Lab, auth, running_lab
from trenv.disclosure.policy import POLICY_DIR, load_policy
from trenv.lab.server.output_judge import OutputLimits
from trenv.lab.server.terminals import (
    TerminalWindow,
    screen_text,
    terminals_refusal,
)

LIMITS = OutputLimits.from_setting(load_policy("trenv-default").egress)


def csv(rows: int) -> str:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "case": [f"C{100000 + i}" for i in range(rows)],
            "offence": rng.choice(["fraud", "theft", "assault"], rows),
            "sentence_months": rng.integers(0, 60, rows),
        }
    )
    return frame.to_csv(index=False).replace("\n", "\r\n")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- the refusal ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["api/terminals", "api/terminals/1", "terminals/websocket/1", "/api/terminals"]
)
def test_terminal_routes_are_refused(path: str) -> None:
    refusal = terminals_refusal(path)
    assert refusal is not None and refusal.reason == "terminals-off"
    assert "airlock" in refusal.body()["export"]


@pytest.mark.parametrize("path", ["api/kernels", "lab/terminals/1", "api/contents/terminals"])
def test_other_routes_are_not(path: str) -> None:
    assert terminals_refusal(path) is None


# --- the stream -------------------------------------------------------------------------------


def test_a_shell_session_passes() -> None:
    window = TerminalWindow(LIMITS, Clock())
    frames = [
        "\x1b[?2004h\x1b]0;jovyan@lab: ~/work\x07\x1b[01;32mjovyan@lab\x1b[00m:~/work$ ",
        "ls --color\r\n",
        "\x1b[0m\x1b[01;34mnotebooks\x1b[0m  \x1b[01;34moutputs\x1b[0m  README.md\r\n",
        "python -c 'print(2 ** 10)'\r\n1024\r\n",
        "git log --oneline | head -3\r\n1a2b3c4 tables\r\n5d6e7f8 models\r\n9a0b1c2 start\r\n",
    ]
    for frame in frames:
        verdict = window.judge(frame)
        assert verdict.send == frame and verdict.cut is None


def test_colour_escapes_are_not_counted_as_binary() -> None:
    coloured = "\x1b[01;34mdir\x1b[0m  " * 400
    assert "\x1b" not in screen_text(coloured)
    assert TerminalWindow(LIMITS, Clock()).judge(coloured).cut is None


def test_cat_of_a_csv_is_cut_and_the_terminal_stays_quiet_for_a_minute() -> None:
    clock = Clock()
    window = TerminalWindow(LIMITS, clock)
    verdict = window.judge(csv(300))
    assert verdict.cut is not None and verdict.cut.rule == "table-rows"
    assert verdict.send is not None and "withheld" in verdict.send and "C100" not in verdict.send
    assert verdict.detail["channel"] == "terminal" and "C100" not in json.dumps(verdict.detail)
    clock.now += 30
    assert window.judge("$ echo hi\r\nhi\r\n").send is None
    clock.now += 31
    assert window.judge("$ echo hi\r\nhi\r\n").send == "$ echo hi\r\nhi\r\n"


def test_a_slow_cat_is_cut_by_the_rolling_minute() -> None:
    clock = Clock()
    window = TerminalWindow(LIMITS, clock)
    lines = csv(300).splitlines(keepends=True)
    sent = 0
    for i in range(0, len(lines), 10):  # ten rows a frame, a frame a second
        verdict = window.judge("".join(lines[i : i + 10]))
        clock.now += 1
        if verdict.cut is not None:
            assert verdict.cut.rule == "window-rows"
            break
        sent += 10
    assert sent <= LIMITS.cell_max_table_rows


def test_base64_in_the_terminal_is_cut() -> None:
    import base64

    frame = base64.encodebytes(bytes(range(256)) * 20).decode().replace("\n", "\r\n")
    assert TerminalWindow(LIMITS, Clock()).judge(frame).cut is not None


def test_every_socket_on_a_terminal_gets_one_verdict() -> None:
    window = TerminalWindow(LIMITS, Clock())
    frame = csv(300)
    first, second = window.judge(frame, sockets=2), window.judge(frame, sockets=2)
    assert first is second  # one cut, one audit event, however many tabs show the terminal
    assert window.judge(frame).send is None  # a third time is a new frame: withheld


# --- a real server --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("terminals-off")
    with running_lab(root, policy="trenv-default") as lab:
        yield lab


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "api/terminals"), ("GET", "api/terminals"), ("GET", "api/terminals/1")],
)
def test_terminals_are_refused_by_the_server(refusing: Lab, method: str, path: str) -> None:
    reply = requests.request(method, f"{refusing.url}/{path}", headers=auth(), timeout=30)
    assert reply.status_code == 403, (reply.status_code, reply.text[:300])
    body = reply.json()
    assert body["reason"] == "terminals-off" and "airlock" in body["export"]


def test_an_attempt_is_audited_and_an_anonymous_one_is_not(refusing: Lab) -> None:
    def paths() -> list[str]:
        return [str(d["path"]) for d in refusing.api.events() if d.get("rule") == "terminals-off"]

    anonymous = requests.post(f"{refusing.url}/api/terminals/anonymous-1", timeout=30)
    assert anonymous.status_code == 403 and anonymous.json()["reason"] == "terminals-off"
    mine = requests.post(f"{refusing.url}/api/terminals/mine-1", headers=auth(), timeout=30)
    assert mine.status_code == 403
    assert refusing.api.wait_for(lambda: [p for p in paths() if p.endswith("/mine-1")])
    time.sleep(3)  # a later batch of the meter's would carry it too
    assert not [p for p in paths() if p.endswith("/anonymous-1")]


def test_the_terminal_websocket_is_refused(refusing: Lab) -> None:
    url = refusing.url.replace("http://", "ws://") + "/terminals/websocket/1"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, header=[f"Authorization: token {BROWSER_TOKEN}"])
    assert refused.value.status_code == 403


def test_kernels_still_work_when_terminals_are_off(refusing: Lab) -> None:
    reply = requests.post(f"{refusing.url}/api/kernels", headers=auth(), json={}, timeout=60)
    assert reply.status_code == 201
    requests.delete(f"{refusing.url}/api/kernels/{reply.json()['id']}", headers=auth())


@pytest.fixture(scope="module")
def allowing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("terminals-on")
    profile = (POLICY_DIR / "trenv-default.yaml").read_text()
    policy = root / "with-terminals.yaml"
    policy.write_text(profile + "\negress: {terminals: true}\n")
    with running_lab(root, policy=str(policy)) as lab:
        (lab.work / "cases.csv").write_text(csv(300).replace("\r\n", "\n"))
        yield lab


class Terminal:
    def __init__(self, lab: Lab) -> None:
        reply = requests.post(f"{lab.url}/api/terminals", headers=auth(), timeout=30)
        assert reply.status_code == 200, reply.text
        self.name = reply.json()["name"]
        url = lab.url.replace("http://", "ws://") + f"/terminals/websocket/{self.name}"
        self.ws = websocket.create_connection(
            url, header=[f"Authorization: token {BROWSER_TOKEN}"], timeout=5
        )

    def run(self, command: str, until: str, timeout: float = 20) -> str:
        self.ws.send(json.dumps(["stdin", command + "\r"]))
        seen = ""
        deadline = time.monotonic() + timeout
        while until not in seen and time.monotonic() < deadline:
            try:
                kind, *rest = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                continue
            if kind == "stdout":
                seen += rest[0]
        return seen


def test_a_terminal_shows_ordinary_output(allowing: Lab) -> None:
    terminal = Terminal(allowing)
    seen = terminal.run("echo $((6 * 7)) done", until="42 done")
    assert "42 done" in seen and "withheld" not in seen


def test_cat_of_a_data_file_in_a_terminal_is_cut(allowing: Lab) -> None:
    terminal = Terminal(allowing)
    seen = terminal.run("cat cases.csv; echo finished", until="withheld")
    assert "withheld" in seen and "tre.save" in seen
    assert len(set(re.findall(r"C1\d{5}", seen))) < 50
    events = allowing.api.wait_for(
        lambda: [
            e.detail
            for r in allowing.api.reports
            for e in r.events
            if e.action == "egress.cut" and e.detail.get("channel") == "terminal"
        ]
    )
    assert events and all("C100" not in json.dumps(d) for d in events)
    counted = allowing.api.wait_for(
        lambda: sum(
            c.bytes for r in allowing.api.reports for c in r.counts if c.channel == "terminal"
        )
    )
    assert counted > 0
