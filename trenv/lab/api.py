"""The one client of the trenv web API inside the notebook container.

Three callers in the container talk to the trenv API: the researcher API (``tre.dp``,
``tre.request_export``: blocking calls in the kernel) and the Jupyter server extension (the
Outputs panel's forwarder and the egress meter, on tornado's event loop). They reach the same
URL (``TRENV_API_URL``, set by the spawner) with the same credential (the notebook server's
own ``JUPYTERHUB_API_TOKEN``, never the browser's), so both are resolved here, once, and
every call keeps the same rules:

- redirects are never followed and proxy settings in the environment are ignored: the API
  is on the containers' internal network and the server's token goes nowhere else;
- one connection per call, closed after it, so no idle connection can go stale;
- a reply that is not JSON reads as ``{"problem": <its first 500 characters>}``; no reply at
  all (refused, reset, timed out) is an :class:`ApiError` with status 0.

:class:`Api` makes the blocking calls, :class:`AsyncApi` the calls on the event loop.
This module runs in the container: it must never import trenv.store or hub-side packages.
"""

from __future__ import annotations

import functools
import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from trenv.wire.errors import VALIDATION_FIX, validation_problem

URL_ENV = "TRENV_API_URL"
TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
NOT_CONFIGURED = "the trenv API is not configured in this session."
UNANSWERED = "the trenv service did not answer"
UNEXPECTED = "unexpected reply from the trenv API."
OK = (200, 201)
PROBLEM_CHARS = 500

# Where blocking calls go; None is the network. Tests route them to an in-process app.
transport: httpx.BaseTransport | None = None


class ApiError(Exception):
    """The trenv API refused a call (``status``: its HTTP status), or gave no reply (0)."""

    def __init__(self, status: int, problem: str, fix: str | None = None) -> None:
        self.status, self.problem, self.fix = status, problem, fix
        super().__init__(f"{problem} {fix}" if fix else problem)


E = TypeVar("E", bound=ApiError)
Body = TypeVar("Body", bound=BaseModel)


@dataclass(frozen=True)
class Endpoint:
    """Where the trenv API is, and the token that says which notebook server is calling."""

    base_url: str
    token: str

    @classmethod
    def of(cls, api_url: str, token: str) -> Endpoint | None:
        """None when either is missing: the server was not started by the trenv hub."""
        base = api_url.rstrip("/")
        return cls(base, token) if base and token else None

    @classmethod
    def from_environment(cls, api_url: str = "") -> Endpoint | None:
        """``api_url`` (a server setting) else ``$TRENV_API_URL``, with the server's token."""
        return cls.of(api_url or os.environ.get(URL_ENV, ""), os.environ.get(TOKEN_ENV, ""))

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path}"

    def headers(self, content: bytes | None) -> dict[str, str]:
        headers = {"Authorization": f"token {self.token}"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        return headers


@dataclass(frozen=True)
class Reply:
    """What the API answered: status, body, and the status's reason phrase."""

    status: int
    content: bytes
    reason: str = ""

    def data(self) -> Any:
        """The JSON body, or ``{"problem": ...}`` with the start of a body that is not JSON."""
        try:
            return json.loads(self.content)
        except ValueError:
            text = self.content.decode("utf-8", "replace")[:PROBLEM_CHARS]
            return {"problem": text or self.reason}

    def result(self, error: type[E]) -> dict[str, Any]:
        """The JSON object of an accepted call; else ``error`` with the API's problem and fix."""
        data = self.data()
        if self.status not in OK:
            problem = data.get("problem") if isinstance(data, dict) else data
            fix = data.get("fix") if isinstance(data, dict) else None
            raise error(self.status, str(problem), fix)
        if not isinstance(data, dict):
            raise error(self.status, UNEXPECTED)
        return data


def build(model: type[Body], fields: Mapping[str, Any], error: type[ApiError]) -> Body:
    """``fields`` as the wire ``model`` that the API validates them with. A body the API
    would refuse is refused here, with the API's status (400) and words, and never sent."""
    try:
        return model.model_validate(fields)
    except ValidationError as invalid:
        raise error(400, validation_problem(invalid.errors()), VALIDATION_FIX) from None


def encode(body: Any) -> bytes | None:
    """A body as JSON bytes: a wire model as it dumps itself, anything else with json."""
    if body is None:
        return None
    if isinstance(body, BaseModel):
        return body.model_dump_json().encode()
    return json.dumps(body, allow_nan=False).encode()


@functools.cache
def _tls() -> ssl.SSLContext:
    # Loading the CA bundle takes ~0.1 s: once per process, not once per client.
    return httpx.create_ssl_context()


def _client_options(timeout: float) -> dict[str, Any]:
    return {
        "timeout": timeout,
        "follow_redirects": False,
        "trust_env": False,
        "verify": _tls(),
        "limits": httpx.Limits(max_keepalive_connections=0),
    }


def _unanswered(error: httpx.HTTPError, kind: type[E]) -> E:
    return kind(0, f"{UNANSWERED}: {str(error) or type(error).__name__}")


class Api:
    """Blocking calls, for the researcher API in the kernel."""

    def __init__(
        self, endpoint: Endpoint, *, timeout: float, error: type[ApiError] = ApiError
    ) -> None:
        self.endpoint, self.timeout, self.error = endpoint, timeout, error

    @classmethod
    def for_session(cls, *, timeout: float, error: type[ApiError], caller: str) -> Api:
        """This notebook session's client; ``error`` when the session has no trenv API.
        ``caller`` names the function for the fix, e.g. ``tre.dp``."""
        endpoint = Endpoint.from_environment()
        if endpoint is None:
            raise error(
                0, NOT_CONFIGURED, f"{caller} works inside a trenv notebook server ({URL_ENV})."
            )
        return cls(endpoint, timeout=timeout, error=error)

    def send(self, method: str, path: str, body: Any = None) -> Reply:
        """The API's reply, whatever its status; ``self.error`` (status 0) without one."""
        content = encode(body)
        try:
            with httpx.Client(transport=transport, **_client_options(self.timeout)) as client:
                reply = client.request(
                    method,
                    self.endpoint.url(path),
                    content=content,
                    headers=self.endpoint.headers(content),
                )
        except httpx.HTTPError as error:
            raise _unanswered(error, self.error) from error
        return Reply(reply.status_code, reply.content, reply.reason_phrase)

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """The JSON object the API answered; ``self.error`` with its problem otherwise."""
        return self.send(method, path, body).result(self.error)


class AsyncApi:
    """Calls on the Jupyter server's event loop: the Outputs panel's forwarder, the meter.

    ``endpoint`` None: the server was not started by the trenv hub; callers check
    :attr:`connected` and answer for themselves. One ``httpx.AsyncClient`` serves every call
    of this object; it keeps no idle connection, so there is nothing to close.
    """

    def __init__(self, endpoint: Endpoint | None, *, timeout: float) -> None:
        self.endpoint, self.timeout = endpoint, timeout
        self._client = httpx.AsyncClient(**_client_options(timeout)) if endpoint else None

    @property
    def connected(self) -> bool:
        return self.endpoint is not None

    async def send(
        self, method: str, path: str, body: Any = None, *, timeout: float | None = None
    ) -> Reply:
        """The API's reply, whatever its status; :class:`ApiError` (status 0) without one."""
        if self.endpoint is None or self._client is None:
            raise ApiError(0, NOT_CONFIGURED)
        content = encode(body)
        try:
            reply = await self._client.request(
                method,
                self.endpoint.url(path),
                content=content,
                headers=self.endpoint.headers(content),
                timeout=self.timeout if timeout is None else timeout,
            )
        except httpx.HTTPError as error:
            raise _unanswered(error, ApiError) from error
        return Reply(reply.status_code, reply.content, reply.reason_phrase)
