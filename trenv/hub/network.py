"""The containers' network: an internal Docker bridge plus host firewall rules.

What holds once :func:`ensure_network` ran:

- the network is ``internal`` (Docker adds no route out and no NAT) and has inter-container
  communication disabled, so containers reach neither the internet nor each other;
- Docker's embedded DNS answers nothing useful on an internal network, and no resolver
  outside is reachable;
- host firewall rules (chain ``TRENV-INPUT``) let a container reach only the hub API and the
  trenv API ports on the bridge gateway; every other host service is dropped, and so is
  anything addressed to link-local space (169.254.0.0/16: cloud metadata endpoints);
- forwarded traffic from the bridge (chain ``TRENV-FORWARD`` from Docker's ``DOCKER-USER``)
  is dropped outright, a second wall behind the internal flag.

The rules are applied with the ``iptables`` command: the Python bindings (python-iptables)
are unmaintained and need the same privileges, and the command is what operators audit.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from dataclasses import dataclass

import docker
from docker.models.networks import Network

from trenv.errors import Invalid

INPUT_CHAIN = "TRENV-INPUT"
FORWARD_CHAIN = "TRENV-FORWARD"
LINK_LOCAL_V4 = "169.254.0.0/16"
LINK_LOCAL_V6 = "fe80::/10"


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    bridge: str
    allowed_ports: tuple[int, ...]  # TCP ports on the gateway a container may reach

    def chain(self, base: str) -> str:
        # One chain per network so test networks and the demo's never touch each other.
        return f"{base}-{self.bridge}"[:28]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _iptables(binary: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary, "-w", *args], capture_output=True, text=True, check=check)


def _has_rule(binary: str, chain: str, rule: list[str]) -> bool:
    return _iptables(binary, "-C", chain, *rule, check=False).returncode == 0


def _require_iptables() -> None:
    if shutil.which("iptables") is None:
        raise Invalid(
            "iptables is not installed, so the containers' firewall cannot be set.",
            "Run scripts/install-docker.sh as root (it installs iptables).",
        )


def ensure_network(client: docker.DockerClient, spec: NetworkSpec) -> Network:
    """Create (or reuse) the internal network and (re)apply its firewall rules. Idempotent."""
    _require_iptables()
    existing = client.networks.list(names=[spec.name])
    network = next((n for n in existing if n.name == spec.name), None)
    if network is None:
        network = client.networks.create(
            spec.name,
            driver="bridge",
            internal=True,
            options={
                "com.docker.network.bridge.enable_icc": "false",
                "com.docker.network.bridge.name": spec.bridge,
            },
            labels={"org.trenv.role": "notebook-network"},
        )
    network.reload()
    problems = [c for c in _network_checks(network, spec) if not c.ok]
    if problems:
        raise Invalid(
            f"Docker network {spec.name!r} exists but is not locked down: "
            + "; ".join(c.detail for c in problems),
            f"Remove it (docker network rm {spec.name}) and run this again.",
        )
    _apply_firewall(spec, gateway_of(network))
    return network


def gateway_of(network: Network) -> str:
    configs = network.attrs.get("IPAM", {}).get("Config") or []
    for config in configs:
        gateway = config.get("Gateway")
        if gateway and ipaddress.ip_address(gateway).version == 4:
            return str(gateway)
    raise Invalid(f"network {network.name!r} has no IPv4 gateway.", "Recreate the network.")


def _input_rules(spec: NetworkSpec, gateway: str) -> list[list[str]]:
    rules = [
        ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
        ["-d", LINK_LOCAL_V4, "-j", "DROP"],
    ]
    rules += [["-p", "tcp", "-d", gateway, "--dport", str(p), "-j", "ACCEPT"]
              for p in spec.allowed_ports]  # fmt: skip
    rules.append(["-j", "DROP"])
    return rules


def _forward_rules() -> list[list[str]]:
    return [["-d", LINK_LOCAL_V4, "-j", "DROP"], ["-j", "DROP"]]


def _apply_firewall(spec: NetworkSpec, gateway: str) -> None:
    for binary, table in (("iptables", "v4"), ("ip6tables", "v6")):
        if shutil.which(binary) is None:
            continue
        in_chain, fwd_chain = spec.chain(INPUT_CHAIN), spec.chain(FORWARD_CHAIN)
        for chain in (in_chain, fwd_chain):
            _iptables(binary, "-N", chain, check=False)  # exists already: fine
            _iptables(binary, "-F", chain)
        if table == "v4":
            input_rules, forward_rules = _input_rules(spec, gateway), _forward_rules()
        else:  # the network has no IPv6: nothing over v6 is allowed at all
            input_rules = [["-d", LINK_LOCAL_V6, "-j", "DROP"], ["-j", "DROP"]]
            forward_rules = [["-j", "DROP"]]
        for rule in input_rules:
            _iptables(binary, "-A", in_chain, *rule)
        for rule in forward_rules:
            _iptables(binary, "-A", fwd_chain, *rule)
        jump_in = ["-i", spec.bridge, "-j", in_chain]
        if not _has_rule(binary, "INPUT", jump_in):
            _iptables(binary, "-I", "INPUT", "1", *jump_in)
        forward_parent = "DOCKER-USER" if _chain_exists(binary, "DOCKER-USER") else "FORWARD"
        jump_fwd = ["-i", spec.bridge, "-j", fwd_chain]
        if not _has_rule(binary, forward_parent, jump_fwd):
            _iptables(binary, "-I", forward_parent, "1", *jump_fwd)


def _chain_exists(binary: str, chain: str) -> bool:
    return _iptables(binary, "-S", chain, check=False).returncode == 0


def remove_network(client: docker.DockerClient, spec: NetworkSpec) -> None:
    """Remove the firewall rules and the network (tests, and `trenv hub` teardown)."""
    for binary in ("iptables", "ip6tables"):
        if shutil.which(binary) is None:
            continue
        in_chain, fwd_chain = spec.chain(INPUT_CHAIN), spec.chain(FORWARD_CHAIN)
        for parent in ("INPUT",):
            while _has_rule(binary, parent, ["-i", spec.bridge, "-j", in_chain]):
                _iptables(binary, "-D", parent, "-i", spec.bridge, "-j", in_chain)
        for parent in ("DOCKER-USER", "FORWARD"):
            while _chain_exists(binary, parent) and _has_rule(
                binary, parent, ["-i", spec.bridge, "-j", fwd_chain]
            ):
                _iptables(binary, "-D", parent, "-i", spec.bridge, "-j", fwd_chain)
        for chain in (in_chain, fwd_chain):
            _iptables(binary, "-F", chain, check=False)
            _iptables(binary, "-X", chain, check=False)
    for network in client.networks.list(names=[spec.name]):
        if network.name == spec.name:
            network.remove()


def _network_checks(network: Network, spec: NetworkSpec) -> list[Check]:
    attrs = network.attrs
    options = attrs.get("Options") or {}
    return [
        Check("internal", bool(attrs.get("Internal")),
              "internal (no route out)" if attrs.get("Internal") else "not internal"),
        Check(
            "no inter-container traffic",
            options.get("com.docker.network.bridge.enable_icc") == "false",
            f"enable_icc={options.get('com.docker.network.bridge.enable_icc', 'true')}",
        ),
        Check(
            "bridge name",
            options.get("com.docker.network.bridge.name") == spec.bridge,
            f"bridge={options.get('com.docker.network.bridge.name')}",
        ),
        Check("no IPv6", not attrs.get("EnableIPv6"),
              "IPv6 disabled" if not attrs.get("EnableIPv6") else "IPv6 enabled"),
    ]  # fmt: skip


def check_network(client: docker.DockerClient, spec: NetworkSpec) -> list[Check]:
    """What holds right now: the network's flags and each firewall rule, read back."""
    found = [n for n in client.networks.list(names=[spec.name]) if n.name == spec.name]
    if not found:
        return [Check("network exists", False, f"no Docker network named {spec.name!r}")]
    network = found[0]
    network.reload()
    checks = [Check("network exists", True, spec.name), *_network_checks(network, spec)]
    gateway = gateway_of(network)
    in_chain, fwd_chain = spec.chain(INPUT_CHAIN), spec.chain(FORWARD_CHAIN)
    checks.append(
        Check(
            "host INPUT from bridge filtered",
            _has_rule("iptables", "INPUT", ["-i", spec.bridge, "-j", in_chain]),
            f"INPUT -i {spec.bridge} -j {in_chain}",
        )
    )
    for rule in _input_rules(spec, gateway):
        checks.append(
            Check(f"rule {' '.join(rule)}", _has_rule("iptables", in_chain, rule), in_chain)
        )
    parent = "DOCKER-USER" if _chain_exists("iptables", "DOCKER-USER") else "FORWARD"
    checks.append(
        Check(
            "forwarding from bridge dropped",
            _has_rule("iptables", parent, ["-i", spec.bridge, "-j", fwd_chain])
            and all(_has_rule("iptables", fwd_chain, r) for r in _forward_rules()),
            f"{parent} -i {spec.bridge} -j {fwd_chain}",
        )
    )
    if shutil.which("ip6tables"):
        checks.append(
            Check(
                "IPv6 from bridge dropped",
                _has_rule("ip6tables", "INPUT", ["-i", spec.bridge, "-j", in_chain])
                and _has_rule("ip6tables", in_chain, ["-j", "DROP"]),
                f"ip6tables INPUT -i {spec.bridge} -j {in_chain}",
            )
        )
    return checks
