"""Terminals: refused unless the project's profile allows them, and judged when it does.

A terminal is a second kernel without a notebook: ``cat``, ``base64`` or ``xxd`` print a
dataset as easily as ``print``. So:

- when the profile says ``egress.terminals: false`` (the default) a routing rule in front of
  every route answers ``/api/terminals...`` and ``/terminals/...`` with a 403 refusal
  (reason ``terminals-off``), besides the spawner switching terminals off
  (``--ServerApp.terminals_enabled=False``): two independent locks;
- when it allows them, the terminal websocket is served by a subclass of jupyter_server's
  whose output is judged on its way out. Terminal output is a byte stream cut into frames
  wherever the pty read stopped, so each frame is judged with the per-output limits and a
  rolling window of the last minute with the per-cell limits (a ``cat`` of a big file is
  many frames). After a cut the terminal's output is withheld for a minute, with one marker.
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server_terminals.handlers import TermSocket
from tornado import httputil, web
from tornado.routing import Matcher, PathMatches, Rule

from trenv.judge.text import Cut, judge_measure, measure
from trenv.lab.server.decisions import EXPORT_HINT, Refusal, relative_to_base
from trenv.lab.server.output_judge import Meter, OutputLimits

WINDOW_SECONDS = 60.0
TERMINALS_OFF = Refusal(
    "terminals-off",
    "Terminals are switched off for this project: a terminal shows any file as text, which "
    "would bypass the checks on what leaves the research environment. Use a notebook; ask "
    "your data steward if the project needs terminals. " + EXPORT_HINT,
)
# Escape sequences that move the cursor or set colours (CSI, and the short ESC forms):
# they are not content, and every one would count as a binary character. An OSC sequence
# (window title) keeps its text, which is judged.
_CSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78DEHMNOZc]")
_OSC = re.compile(r"\x1b\][0-9]*;?|\x07|\x1b\\")


def terminals_refusal(relative_path: str) -> Refusal | None:
    """The refusal of a terminals route (below the base URL) when terminals are off."""
    path = relative_path.lstrip("/")
    if path == "api/terminals" or path.startswith(("api/terminals/", "terminals/")):
        return TERMINALS_OFF
    return None


def screen_text(frame: str) -> str:
    """``frame`` without cursor and colour escapes: the text a terminal shows."""
    return _OSC.sub("", _CSI.sub("", frame))


# --- the judgement of the stream ------------------------------------------------------------


@dataclass(frozen=True)
class FrameVerdict:
    """What to send for one frame: the frame, a marker, or nothing."""

    send: str | None
    cut: Cut | None = None
    detail: dict[str, object] = field(default_factory=dict)


def terminal_marker(reason: str) -> str:
    return (
        f"\r\n[trenv] Terminal output withheld from the browser: {reason} Output shows again "
        f"after a minute. An audit event was written. {EXPORT_HINT}\r\n"
    )


class TerminalWindow:
    """One terminal's output over the last minute (shared by the sockets showing it)."""

    def __init__(self, limits: OutputLimits, clock: Callable[[], float] = time.monotonic):
        self.limits = limits
        self.clock = clock
        self._recent: deque[tuple[float, int, int]] = deque()  # (time, chars, rows)
        self._chars = 0
        self._rows = 0
        self._withheld_until = 0.0
        # The last frame, its verdict, and how many more sockets will be handed that frame.
        self._last: tuple[str, FrameVerdict, int] | None = None

    def _expire(self, now: float) -> None:
        while self._recent and self._recent[0][0] <= now - WINDOW_SECONDS:
            _, chars, rows = self._recent.popleft()
            self._chars -= chars
            self._rows -= rows

    def judge(self, frame: str, sockets: int = 1) -> FrameVerdict:
        """The verdict on ``frame``, which terminado hands to each of the ``sockets`` showing
        this terminal in turn: judged (and counted, and audited) once for all of them."""
        last = self._last
        if last is not None and last[0] is frame and last[2] > 0:
            self._last = (frame, last[1], last[2] - 1)
            return last[1]
        verdict = self._judge(frame)
        self._last = (frame, verdict, sockets - 1)
        return verdict

    def _judge(self, frame: str) -> FrameVerdict:
        now = self.clock()
        self._expire(now)
        if now < self._withheld_until:
            return FrameVerdict(None)
        m = measure(screen_text(frame))
        rows = max(m.table_rows, m.html_rows)
        self._recent.append((now, m.chars, rows))
        self._chars += m.chars
        self._rows += rows
        cut = judge_measure(m, self.limits.output)
        if cut is None and self._chars > self.limits.cell_max_chars:
            cut = Cut(
                "window-size",
                f"{self._chars:,} characters in the last minute; at most "
                f"{self.limits.cell_max_chars:,} are shown per minute.",
            )
        if cut is None and self._rows > self.limits.cell_max_table_rows:
            cut = Cut(
                "window-rows",
                f"{self._rows:,} rows of tables in the last minute; at most "
                f"{self.limits.cell_max_table_rows} are shown per minute.",
            )
        if cut is None:
            return FrameVerdict(frame)
        self._withheld_until = now + WINDOW_SECONDS
        self._recent.clear()
        self._chars = self._rows = 0
        detail: dict[str, object] = {
            "channel": "terminal",
            "rule": cut.rule,
            "chars": m.chars,
            "blob_chars": m.blob_chars,
            "table_rows": rows,
            "pseudonyms": m.pseudonyms,
        }
        return FrameVerdict(terminal_marker(cut.reason), cut, detail)


# --- tornado: the refusal rule and the judged socket ----------------------------------------


class TerminalsMatcher(Matcher):
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def match(self, request: httputil.HTTPServerRequest) -> dict[str, Any] | None:
        relative = relative_to_base(request.path or "", self.base_url)
        if relative is None or terminals_refusal(relative) is None:
            return None
        return {}


class TerminalsRefusedHandler(JupyterHandler):
    """Answers every method on a terminals route with the refusal; nothing else runs. An
    attempt by the logged-in user is an attempt at a way out: it is audited (an anonymous
    one is only refused, so that nobody can fill the user's audit trail)."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

    def check_xsrf_cookie(self) -> None:
        return None  # the researcher should read the reason, not an XSRF error

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare(_redirect_to_login=False)  # who is asking (never a login page)
        meter = self.settings.get("trenv_meter")
        if self.current_user and meter is not None:
            path = (self.request.path or "")[:300]
            meter.event("egress.refused", {"rule": TERMINALS_OFF.reason, "path": path})
        self.set_status(403)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(TERMINALS_OFF.body()))


class JudgedTermSocket(TermSocket):
    """jupyter_server's terminal websocket, with the output judged and metered."""

    _windows: dict[str, TerminalWindow] = {}  # noqa: RUF012 (per terminal, all sockets)

    @property
    def meter(self) -> Meter:
        meter: Meter = self.settings["trenv_meter"]
        return meter

    def _window(self) -> TerminalWindow:
        limits: OutputLimits = self.settings["trenv_output_limits"]
        window = self._windows.get(self.term_name)
        if window is None:
            window = self._windows[self.term_name] = TerminalWindow(limits)
        return window

    def on_pty_read(self, text: str) -> None:
        sockets = len(self.terminal.clients) if self.terminal is not None else 1
        verdict = self._window().judge(text, sockets)
        if verdict.cut is not None and verdict.detail:
            self.log.warning("trenv: terminal output cut (%s)", verdict.cut.rule)
            self.meter.event("egress.cut", {**verdict.detail, "terminal": self.term_name})
            verdict.detail.clear()  # one event per cut, however many sockets show it
        if verdict.send is None:
            return
        if verdict.cut is None and not self.meter.allowed("text"):
            if getattr(self, "_trenv_stopped", False):
                return
            self._trenv_stopped = True
            self._send("\r\n" + self.meter.stopped_message("text") + "\r\n")
            return
        self._trenv_stopped = False
        self._send(verdict.send)

    def _send(self, text: str) -> None:
        payload = json.dumps(["stdout", text])
        self.write_message(payload)
        self.meter.add("terminal", "text", len(payload.encode("utf-8")))


def install_terminals(
    web_app: web.Application, base_url: str, allowed: bool, limits: OutputLimits
) -> str:
    """Refuse terminals, or judge their output; returns what was done (for the log)."""
    if not allowed:
        web_app.default_router.rules.insert(
            0, Rule(TerminalsMatcher(base_url), TerminalsRefusedHandler)
        )
        # JupyterLab hides its Terminal launcher when the server says none are available.
        web_app.settings["terminals_available"] = False
        return "terminals refused (the profile does not allow them)"
    manager = web_app.settings.get("terminal_manager")
    if manager is None:
        return "terminals allowed by the profile but switched off in the server"
    pattern = base_url.rstrip("/") + r"/terminals/websocket/(\w+)"
    kwargs = {"name": "jupyter_server_terminals", "term_manager": manager}
    web_app.default_router.rules.insert(0, Rule(PathMatches(pattern), JudgedTermSocket, kwargs))
    return "terminal output judged"
