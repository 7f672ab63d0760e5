"""A kernel websocket client speaking either protocol, as JupyterLab 4 does.

``v1.kernel.websocket.jupyter.org`` (binary frames: offsets, channel, header, parent header,
metadata, content, buffers) is what JupyterLab 4 asks for; the legacy protocol sends each
message as one JSON text frame. The tests use both, against a real jupyter_server.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import websocket
from jupyter_server.services.kernels.connection.base import (
    deserialize_binary_message,
    deserialize_msg_from_ws_v1,
    serialize_msg_to_ws_v1,
)

V1 = "v1.kernel.websocket.jupyter.org"


@dataclass
class Received:
    """Everything the server sent back for one request."""

    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (channel, msg)
    frame_bytes: int = 0

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [m for _, m in self.messages if m["header"]["msg_type"] in types]

    @property
    def text(self) -> str:
        """All the text a person (or a script) could read from the output messages."""
        parts: list[str] = []
        for _, msg in self.messages:
            content = msg.get("content") or {}
            if msg["header"]["msg_type"] in ("status", "execute_input"):
                continue
            parts.append(json.dumps(content))
            if "text" in content:
                parts.append(str(content["text"]))
            for value in (content.get("data") or {}).values():
                parts.append(value if isinstance(value, str) else json.dumps(value))
            parts.extend(content.get("traceback") or [])
        return "\n".join(parts)

    @property
    def stdout(self) -> str:
        return "".join(m["content"]["text"] for m in self.of_type("stream"))


class KernelSocket:
    """One websocket to one kernel of a notebook server."""

    def __init__(self, ws_url: str, headers: list[str], protocol: str | None) -> None:
        self.protocol = protocol
        self.session = uuid.uuid4().hex
        self.ws = websocket.create_connection(
            f"{ws_url}?session_id={self.session}",
            header=headers,
            subprotocols=[protocol] if protocol else None,
            timeout=120,
        )
        if protocol:
            chosen = self.ws.getsubprotocol()
            assert chosen == protocol, f"the server chose {chosen!r}, not {protocol!r}"

    def close(self) -> None:
        self.ws.close()

    def send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": msg_type,
            "username": "rosa",
            "session": self.session,
            "date": "",
            "version": "5.3",
        }
        if self.protocol == V1:
            parts = [json.dumps(p).encode() for p in (header, {}, {}, content)]
            self.ws.send_binary(serialize_msg_to_ws_v1(parts, channel))
        else:
            msg = {
                "header": header,
                "parent_header": {},
                "metadata": {},
                "content": content,
                "buffers": [],
                "channel": channel,
            }
            self.ws.send(json.dumps(msg))
        return msg_id

    def receive(self) -> tuple[str, dict[str, Any], int]:
        frame = self.ws.recv()
        size = len(frame) if isinstance(frame, bytes) else len(frame.encode())
        if self.protocol == V1:
            channel, parts = deserialize_msg_from_ws_v1(frame)
            header, parent, metadata, content = (json.loads(p) for p in parts[:4])
            msg = {
                "header": header,
                "parent_header": parent,
                "metadata": metadata,
                "content": content,
                "buffers": parts[4:],
            }
            return channel, msg, size
        msg = deserialize_binary_message(frame) if isinstance(frame, bytes) else json.loads(frame)
        return msg.pop("channel", ""), msg, size

    def request(
        self, channel: str, msg_type: str, content: dict[str, Any], timeout: float = 120
    ) -> Received:
        """Send a request; collect what comes back for it until the reply (and, for an
        execution, the kernel's idle status)."""
        msg_id = self.send(channel, msg_type, content)
        reply_type = msg_type.replace("_request", "_reply")
        out = Received()
        deadline = time.monotonic() + timeout
        replied = idle = False
        while not (replied and (idle or msg_type != "execute_request")):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {reply_type} within {timeout} s")
            got_channel, msg, size = self.receive()
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            out.messages.append((got_channel, msg))
            out.frame_bytes += size
            kind = msg["header"]["msg_type"]
            if kind == reply_type:
                replied = True
            elif kind == "status" and msg["content"].get("execution_state") == "idle":
                idle = True
        return out

    def execute(self, code: str, timeout: float = 120) -> Received:
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        return self.request("shell", "execute_request", content, timeout)
