"""Kernel output judged on its way to the browser: the kernel websocket connection.

jupyter_server hands every message from a kernel's ZMQ sockets to the browser through one
connection object per websocket (``ZMQChannelsWebsocketConnection``). This module's
subclass judges each message with :func:`trenv.lab.server.output_judge.judge_message`
before it is written, for both websocket protocols (the legacy JSON one and the
``v1.kernel.websocket.jupyter.org`` binary framing of JupyterLab 4), counts every byte it
writes in the egress meter and writes an ``egress.cut`` audit event for every cut.

How it is put in force (:func:`install_kernel_output`, called when the extension loads,
after all configuration has been read):

- ``web_app.settings["kernel_websocket_connection_class"]``, which jupyter_server's
  ``KernelWebsocketHandler`` reads on every websocket it opens, is set to our class
  (overriding any ``ServerApp.kernel_websocket_connection_class`` in configuration);
- the kernel channels route is served by a handler subclass whose connection class is fixed
  to ours, put in front of every other route, so an extension that loads later and changes
  the setting does not change what judges the output;
- when anything is not as required (a kernel gateway, no egress meter), the server refuses
  to start: without the judgement it must not serve kernels.

The researcher cannot undo this: the server reads its configuration only at start, from
the image's read-only prefix and a fresh tmpfs ``$HOME``; the kernel is a separate process
that only reaches the server through its ZMQ sockets, which are what this class judges.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from jupyter_client.jsonutil import json_default
from jupyter_server.serverapp import ServerApp
from jupyter_server.services.kernels.connection.base import serialize_msg_to_ws_v1
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from jupyter_server.services.kernels.handlers import default_handlers as kernel_handlers
from jupyter_server.services.kernels.websocket import KernelWebsocketHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.routing import PathMatches, Rule
from tornado.websocket import WebSocketClosedError

from trenv.disclosure.policy import EgressSetting
from trenv.lab.server.output_judge import KernelCells, Meter, OutputLimits, Verdict, image_chars

V1 = "v1.kernel.websocket.jupyter.org"
SETTING_CLASS = "kernel_websocket_connection_class"
SETTING_LIMITS = "trenv_output_limits"
SETTING_METER = "trenv_meter"


class EgressNotEnforced(SystemExit):
    """The server must not serve kernels without the output judgement: it stops.

    A SystemExit, not an Exception: jupyter_server logs an extension's exceptions at load
    and starts anyway (unless ``reraise_server_extension_failures``), which would serve
    kernels unjudged.
    """


class JudgedKernelConnection(ZMQChannelsWebsocketConnection):
    """jupyter_server's kernel websocket connection, with every outgoing message judged."""

    # The cells of every kernel, shared by its connections (see KernelCells).
    _kernel_cells: dict[str, KernelCells] = {}  # noqa: RUF012 (class-level registry)

    @property
    def _settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = self.websocket_handler.settings
        return settings

    @property
    def meter(self) -> Meter:
        meter: Meter = self._settings[SETTING_METER]
        return meter

    @property
    def limits(self) -> OutputLimits:
        limits: OutputLimits = self._settings[SETTING_LIMITS]
        return limits

    @property
    def cells(self) -> KernelCells:
        return self._kernel_cells.setdefault(self.kernel_id, KernelCells())

    async def prepare(self) -> None:
        # Fail closed: no kernel connection without the meter and the limits to judge with.
        if SETTING_METER not in self._settings or SETTING_LIMITS not in self._settings:
            raise web.HTTPError(503, "trenv: kernel output cannot be judged; not connecting")
        await super().prepare()

    # --- outgoing -------------------------------------------------------------------------

    def _on_zmq_reply(self, stream: Any, msg_list: Any) -> None:
        """Judge one message from the kernel, then write what may go to the browser."""
        if stream.closed():
            super()._on_zmq_reply(stream, msg_list)  # jupyter_server's own handling
            return
        channel = str(getattr(stream, "channel", None) or "")
        v1 = self.subprotocol == V1
        try:
            msg = self._decode(msg_list, v1)
        except Exception:  # undecodable or absurdly nested: nothing of it goes
            self.log.warning("trenv: dropped an undecodable %s message", channel)
            self.meter.event(
                "egress.cut", {"channel": "kernel", "rule": "undecodable", "zmq_channel": channel}
            )
            return
        verdict, new = self.cells.judge(
            _key(channel, msg, msg_list, v1), channel, msg, self.limits, self.meter
        )
        if new:
            self._report(verdict)
        if verdict.original:
            if v1:
                self._write(serialize_msg_to_ws_v1(msg_list, channel), verdict.image_chars)
            else:  # jupyter_server's own serialisation (JSON, or binary with buffers)
                self._write(self._reserialize_reply(msg_list, channel), verdict.image_chars)
            return
        for out_channel, out in verdict.send:
            self._write(self._encode(out, out_channel, v1), image_chars(out))

    def _decode(self, msg_list: Any, v1: bool) -> dict[str, Any]:
        if not v1:  # the legacy protocol hands over the deserialised message
            buffers = [bytes(b) for b in msg_list.get("buffers") or []]
            return {**msg_list, "buffers": buffers}
        unpack = self.session.unpack
        header, parent, metadata, content, *buffers = msg_list
        return {
            "header": unpack(header),
            "parent_header": unpack(parent),
            "metadata": unpack(metadata),
            "content": unpack(content),
            "buffers": [bytes(b) for b in buffers],
        }

    def _encode(self, msg: dict[str, Any], channel: str, v1: bool) -> bytes | str:
        if v1:
            pack = self.session.pack
            parts = [
                pack(msg["header"]),
                pack(msg["parent_header"]),
                pack(msg["metadata"]),
                pack(msg["content"]),
            ]
            return serialize_msg_to_ws_v1(parts, channel)
        return json.dumps({**msg, "buffers": [], "channel": channel}, default=json_default)

    def _write(self, payload: bytes | str, images: int) -> None:
        binary = isinstance(payload, bytes)
        size = len(payload) if binary else len(payload.encode("utf-8"))
        try:
            self.write_message(payload, binary=binary)
        except WebSocketClosedError as e:
            self.log.warning(str(e))
            return
        images = min(images, size)
        if images:
            self.meter.add("kernel", "image", images)
        if size - images:
            self.meter.add("kernel", "text", size - images)

    def _report(self, verdict: Verdict) -> None:
        for detail in verdict.cuts:
            self.log.warning(
                "trenv: kernel output cut (%s, %s, %s)",
                detail.get("rule"),
                detail.get("msg_type"),
                detail.get("where"),
            )
            self.meter.event("egress.cut", dict(detail))


def _key(channel: str, msg: dict[str, Any], msg_list: Any, v1: bool) -> tuple[str, str, int]:
    """Which message this is, for every connection that receives it (see KernelCells)."""
    header = msg.get("header")
    msg_id = str(header.get("msg_id", "")) if isinstance(header, dict) else ""
    if v1:
        checksum = 0
        for part in msg_list:
            checksum = zlib.crc32(part, checksum)
    else:
        body = {k: msg.get(k) for k in ("content", "metadata", "parent_header")}
        checksum = zlib.crc32(json.dumps(body, default=str).encode())
        for buffer in msg.get("buffers") or []:
            checksum = zlib.crc32(buffer, checksum)
    return channel, msg_id, checksum


class JudgedKernelWebsocketHandler(KernelWebsocketHandler):
    """The kernel channels route, with the judged connection fixed (not read from settings)."""

    @property
    def kernel_websocket_connection_class(self) -> type[JudgedKernelConnection]:
        return JudgedKernelConnection


def _channels_pattern() -> str:
    for pattern, handler, *_ in kernel_handlers:
        if handler is KernelWebsocketHandler:
            return str(pattern)
    raise EgressNotEnforced("trenv: jupyter_server has no kernel channels route to judge")


def install_kernel_output(serverapp: ServerApp, egress: EgressSetting) -> OutputLimits:
    """Put the judged connection in force for every kernel websocket (or stop the server)."""
    web_app = serverapp.web_app
    if serverapp.gateway_config.gateway_enabled:
        raise EgressNotEnforced(
            "trenv: kernels run through a gateway, whose websocket is not judged; refusing to start"
        )
    if web_app.settings.get(SETTING_METER) is None:
        raise EgressNotEnforced("trenv: no egress meter to count output; refusing to start")
    limits = OutputLimits.from_setting(egress)
    web_app.settings[SETTING_LIMITS] = limits
    web_app.settings[SETTING_CLASS] = JudgedKernelConnection
    # For shutdown: ServerApp closes its open sockets through this class.
    serverapp.kernel_websocket_connection_class = JudgedKernelConnection
    route = url_path_join(web_app.settings["base_url"], _channels_pattern())
    web_app.default_router.rules.insert(0, Rule(PathMatches(route), JudgedKernelWebsocketHandler))
    verify_kernel_output(serverapp)
    return limits


def verify_kernel_output(serverapp: ServerApp) -> None:
    """Stop the server unless the class in force for kernel websockets is ours."""
    in_force = serverapp.web_app.settings.get(SETTING_CLASS)
    if not (isinstance(in_force, type) and issubclass(in_force, JudgedKernelConnection)):
        raise EgressNotEnforced(
            f"trenv: kernel websockets would use {in_force!r}, not the judged connection; "
            "refusing to start"
        )
