"""Where a call comes from: a server token or a container address means inside."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from traitlets.config import Config

from trenv.config import Settings
from trenv.hub import roles
from trenv.hub.hubconfig import configure, subnets_of
from trenv.web.auth import WebUser
from trenv.web.network_origin import (
    ENV,
    BadSubnets,
    address_in_container,
    parse_subnets,
    request_in_container,
)

NETS = parse_subnets("172.30.0.0/16, fd00:7::/64")
PERSON = WebUser("rita")


def fake_request(peer: str | None, local: str = "172.30.0.1") -> Any:
    return SimpleNamespace(
        client=SimpleNamespace(host=peer) if peer is not None else None,
        scope={"server": (local, 8081)},
        headers={"x-forwarded-for": "203.0.113.9"},  # never consulted
    )


@pytest.mark.parametrize(
    ("peer", "inside"),
    [
        ("172.30.4.9", True),
        ("::ffff:172.30.4.9", True),  # IPv4 peer on a dual-stack socket
        ("fd00:7::12", True),
        ("203.0.113.9", False),
        ("127.0.0.1", False),
        ("172.31.0.5", False),
        ("testclient", True),  # not an address: cannot be placed, so inside
        ("", True),
    ],
)
def test_peer_addresses(peer: str, inside: bool) -> None:
    assert address_in_container(peer, NETS) is inside


def test_the_hosts_own_address_on_the_bridge_is_not_a_container() -> None:
    # The proxy reaches the service on the gateway address and so connects *from* it.
    assert address_in_container("172.30.0.1", NETS, local="172.30.0.1") is False
    assert address_in_container("172.30.0.7", NETS, local="172.30.0.1") is True


def test_bad_settings_fail_closed() -> None:
    with pytest.raises(BadSubnets):
        parse_subnets("172.30.0.0/16,not-a-net")
    request = fake_request("203.0.113.9")
    assert request_in_container(request, PERSON, {ENV: "nonsense"}) is True
    assert request_in_container(request, PERSON, {ENV: "172.30.0.0/16"}) is False
    assert request_in_container(request, PERSON, {}) is False  # no container network known


def test_a_server_token_is_inside_wherever_it_comes_from() -> None:
    server = WebUser("rita", from_server=True)
    assert request_in_container(fake_request("203.0.113.9"), server, {ENV: ""}) is True


def test_forwarded_headers_are_ignored_and_no_peer_is_inside() -> None:
    env = {ENV: "172.30.0.0/16"}
    assert request_in_container(fake_request("172.30.0.9"), PERSON, env) is True
    assert request_in_container(fake_request(None), PERSON, env) is True


def test_the_hub_tells_the_service_the_container_subnets(tmp_path: Path) -> None:
    c = Config()
    configure(c, Settings(home=tmp_path), gateway="172.31.255.1",
              container_subnets=["172.31.0.0/16"])  # fmt: skip
    (service,) = [s for s in c.JupyterHub.services if s["name"] == roles.SERVICE_NAME]
    assert service["environment"][ENV] == "172.31.0.0/16"
    network = SimpleNamespace(attrs={"IPAM": {"Config": [{"Subnet": "172.31.0.0/16",
                                                          "Gateway": "172.31.0.1"}]}})  # fmt: skip
    assert subnets_of(network) == ["172.31.0.0/16"]
