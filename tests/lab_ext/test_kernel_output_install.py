"""How the judged kernel connection is put in force, and that the server refuses to start
without it (a SystemExit: jupyter_server only logs an extension's exceptions)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from tornado import web

from trenv.disclosure.policy import load_policy
from trenv.lab.server.kernel_output import (
    EgressNotEnforced,
    JudgedKernelConnection,
    JudgedKernelWebsocketHandler,
    install_kernel_output,
    verify_kernel_output,
)

EGRESS = load_policy("trenv-default").egress


def serverapp(meter: Any = object(), gateway: bool = False) -> Any:
    app = web.Application(base_url="/user/rosa/")
    app.settings["kernel_websocket_connection_class"] = ZMQChannelsWebsocketConnection
    if meter is not None:
        app.settings["trenv_meter"] = meter
    return SimpleNamespace(
        web_app=app,
        gateway_config=SimpleNamespace(gateway_enabled=gateway),
        kernel_websocket_connection_class=ZMQChannelsWebsocketConnection,
    )


def test_the_judged_connection_replaces_the_configured_one() -> None:
    app = serverapp()
    install_kernel_output(app, EGRESS)
    assert app.web_app.settings["kernel_websocket_connection_class"] is JudgedKernelConnection
    assert app.kernel_websocket_connection_class is JudgedKernelConnection
    first = app.web_app.default_router.rules[0]
    assert first.target is JudgedKernelWebsocketHandler
    assert first.matcher.regex.match("/user/rosa/api/kernels/1-2-3-4-5/channels")
    # The pinned handler ignores the setting: a later change of it changes nothing.
    assert JudgedKernelWebsocketHandler.kernel_websocket_connection_class.fget(None) is (  # type: ignore[attr-defined]
        JudgedKernelConnection
    )


def test_without_a_meter_the_server_does_not_start() -> None:
    with pytest.raises(EgressNotEnforced, match="meter"):
        install_kernel_output(serverapp(meter=None), EGRESS)
    assert issubclass(EgressNotEnforced, SystemExit)


def test_with_a_kernel_gateway_the_server_does_not_start() -> None:
    with pytest.raises(EgressNotEnforced, match="gateway"):
        install_kernel_output(serverapp(gateway=True), EGRESS)


def test_a_swapped_class_after_loading_stops_the_server() -> None:
    app = serverapp()
    install_kernel_output(app, EGRESS)
    app.web_app.settings["kernel_websocket_connection_class"] = ZMQChannelsWebsocketConnection
    with pytest.raises(EgressNotEnforced, match="refusing to start"):
        verify_kernel_output(app)
