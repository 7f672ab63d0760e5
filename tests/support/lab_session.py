"""A script holding only a researcher's browser session, as an attacker on their own machine.

It logs in through the hub's form (password + one-time code), follows the OAuth dance to the
notebook server, and then talks to the server exactly as JupyterLab does: cookies, the XSRF
token, an Origin header, the kernel websocket. Nothing here uses an API token.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import requests
import websocket

from tests.support.browser import fresh_code

PASSWORD = "a long test passphrase"


def login(hub_url: str, username: str, secret: str, password: str = PASSWORD) -> requests.Session:
    """Log in through the hub's real login form: passphrase and a fresh one-time code."""
    session = requests.Session()
    form = session.get(f"{hub_url}/hub/login", timeout=60)
    reply = session.post(
        f"{hub_url}/hub/login?next=",
        data={
            "username": username,
            "password": password,
            "otp": fresh_code(secret),
            "_xsrf": session.cookies.get("_xsrf") or "",
        },
        timeout=60,
        allow_redirects=False,
    )
    assert form.status_code == 200 and reply.status_code == 302, reply.text[:500]
    return session


@dataclass
class Output:
    """What came back to the browser for one execution."""

    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        parts: list[str] = []
        for msg in self.messages:
            content = msg.get("content", {})
            if "text" in content:
                parts.append(str(content["text"]))
            for value in (content.get("data") or {}).values():
                parts.append(value if isinstance(value, str) else json.dumps(value))
            if "traceback" in content:
                parts.append("\n".join(content["traceback"]))
        return "\n".join(parts)


@dataclass
class LabSession:
    """The researcher's browser session on their own notebook server."""

    hub_url: str
    username: str
    http: requests.Session

    @classmethod
    def open(cls, hub_url: str, username: str, secret: str) -> LabSession:
        http = login(hub_url, username, secret)
        lab = cls(hub_url, username, http)
        page = http.get(lab.url("lab"), timeout=120)  # the OAuth dance, as a browser follows it
        assert page.status_code == 200 and "JupyterLab" in page.text, (page.status_code, page.url)
        return lab

    def url(self, path: str) -> str:
        return f"{self.hub_url}/user/{self.username}/{path.lstrip('/')}"

    def headers(self) -> dict[str, str]:
        xsrf = self.http.cookies.get(
            "_xsrf", path=f"/user/{self.username}/"
        ) or self.http.cookies.get("_xsrf")
        return {"X-XSRFToken": xsrf or "", "Origin": self.hub_url, "Referer": self.url("lab")}

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(
            method, self.url(path), headers=self.headers(), timeout=120, allow_redirects=False,
            **kwargs,
        )  # fmt: skip

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)

    def start_kernel(self) -> Kernel:
        reply = self.request("POST", "api/kernels", json={"name": "python3"})
        assert reply.status_code == 201, (reply.status_code, reply.text[:300])
        kernel_id = reply.json()["id"]
        host = urlparse(self.hub_url).netloc
        ws = websocket.create_connection(
            f"ws://{host}/user/{self.username}/api/kernels/{kernel_id}/channels"
            f"?session_id={uuid.uuid4().hex}",
            header=[f"Cookie: {self.cookie_header()}"],
            origin=self.hub_url,
            timeout=120,
        )
        return Kernel(self, kernel_id, ws)


@dataclass
class Kernel:
    lab: LabSession
    kernel_id: str
    ws: websocket.WebSocket

    def execute(self, code: str, timeout: float = 120) -> Output:
        """Run ``code`` in the kernel; everything the server sent back for it."""
        msg_id = uuid.uuid4().hex
        self.ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id, "msg_type": "execute_request", "username": "",
                        "session": uuid.uuid4().hex, "version": "5.3", "date": "",
                    },
                    "parent_header": {}, "metadata": {}, "buffers": [], "channel": "shell",
                    "content": {"code": code, "silent": False, "store_history": True,
                                "user_expressions": {}, "allow_stdin": False},
                }
            )
        )  # fmt: skip
        out = Output()
        deadline = time.monotonic() + timeout
        idle = replied = False
        while not (idle and replied):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no reply to {code[:80]!r} within {timeout} s")
            raw = self.ws.recv()
            if not isinstance(raw, str):
                continue  # binary frames are the v1 protocol, which this client does not ask for
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg.get("msg_type") or msg.get("header", {}).get("msg_type")
            if msg.get("channel") == "iopub" and kind == "status":
                idle = msg["content"].get("execution_state") == "idle"
            elif msg.get("channel") == "shell" and kind == "execute_reply":
                replied = True
            elif msg.get("channel") == "iopub":
                out.messages.append(msg)
        return out

    def close(self) -> None:
        self.ws.close()
        self.lab.request("DELETE", f"api/kernels/{self.kernel_id}")
