"""Whether a call comes from inside a notebook container.

The trust model says released outputs never go *into* a container, so release and download
(and review) need to know where the caller sits. Two signals, either one suffices:

- the hub says the token is a notebook server's own token (``WebUser.from_server``);
- the TCP peer is an address on the containers' network (``TRENV_CONTAINER_SUBNETS``,
  comma-separated CIDRs, set by the hub configuration).

The peer is ``request.client.host``, the socket's real peer address. ``X-Forwarded-For`` is
never consulted: a container could write any value into it, and the proxy connects from
the host anyway. A peer address equal to the address the service itself listens on is the
host talking to itself (the proxy reaching the service on the bridge gateway gets the
gateway as its source address); a container cannot hold that address.

Anything that cannot be placed (no peer, a peer that is not an IP address, a malformed
setting) counts as *inside*: failing closed only stops a release, failing open would leak.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from functools import lru_cache

from fastapi import Request

from trenv.web.auth import WebUser

ENV = "TRENV_CONTAINER_SUBNETS"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BadSubnets(ValueError):
    """``TRENV_CONTAINER_SUBNETS`` holds something that is not a CIDR."""


@lru_cache(maxsize=8)
def parse_subnets(value: str) -> tuple[IPNetwork, ...]:
    """The networks of a comma-separated CIDR list (blank entries ignored)."""
    nets: list[IPNetwork] = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise BadSubnets(f"{ENV}: {part!r} is not a network in CIDR form ({exc})") from None
    return tuple(nets)


def container_subnets(environ: Mapping[str, str] | None = None) -> tuple[IPNetwork, ...]:
    env = os.environ if environ is None else environ
    return parse_subnets(env.get(ENV, ""))


def _address(host: str | None) -> IPAddress | None:
    if not host:
        return None
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return address


def address_in_container(
    peer: str | None, subnets: tuple[IPNetwork, ...], *, local: str | None = None
) -> bool:
    """Whether ``peer`` is (or may be) a container's address; ``local`` is the service's own
    address on this connection."""
    address = _address(peer)
    if address is None:
        return True  # cannot be placed: fail closed
    if local is not None and address == _address(local):
        return False  # the host itself (see the module docstring)
    return any(address.version == net.version and address in net for net in subnets)


def request_in_container(
    request: Request, user: WebUser, environ: Mapping[str, str] | None = None
) -> bool:
    """``True`` when ``request`` comes from a notebook server's token or a container address."""
    if user.from_server:
        return True
    try:
        subnets = container_subnets(environ)
    except BadSubnets:
        return True  # misconfigured: nothing is released until it is fixed
    peer = request.client.host if request.client else None
    server = request.scope.get("server")
    local = str(server[0]) if server else None
    return address_in_container(peer, subnets, local=local)


def request_from_notebook(
    request: Request, user: WebUser, environ: Mapping[str, str] | None = None
) -> bool:
    """``True`` only when ``request`` is a notebook server's own call: its token, from a
    container's address. Stricter than :func:`request_in_container` (which fails towards
    "inside"): for answers that must reach a kernel, never a browser, this fails closed
    towards "no". A browser reaches the service through the proxy, from the host, even
    with a server token copied out of a kernel."""
    if not user.from_server:
        return False
    try:
        subnets = container_subnets(environ)
    except BadSubnets:
        return False
    address = _address(request.client.host if request.client else None)
    return address is not None and any(
        address.version == net.version and address in net for net in subnets
    )
