"""Spawn-to-ready: trenv's locked-down spawner versus plain DockerSpawner, same image.

Starts each hub in turn (real Docker, real configurable-http-proxy), then through the REST
API: 10 sequential spawns (median and spread of POST-to-ready), and 10 concurrent spawns
(time until all are ready). Prints both side by side with the ratio.

    .venv/bin/python benchmarks/spawn.py [--runs 10] [--image trenv/notebook:demo]

Needs root (the trenv hub sets firewall rules) and the notebook image (`make demo` or
`trenv image build notebook` builds it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import requests

from trenv.config import Settings
from trenv.hub.hubconfig import network_spec
from trenv.hub.network import remove_network
from trenv.hub.process import start_hub, stop_hub
from trenv.registry import images, projects, users
from trenv.store import dispose_engines, transaction, upgrade
from trenv.store.models import GlobalRole, MemberRole

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Client:
    def __init__(self, url: str, token: str, options: dict[str, str]) -> None:
        self.url, self.options = url, options
        self.headers = {"Authorization": f"token {token}"}

    def call(self, method: str, path: str, **kw: object) -> requests.Response:
        return requests.request(
            method, f"{self.url}/hub/api{path}", headers=self.headers, timeout=300, **kw
        )

    def spawn_until_ready(self, user: str) -> float:
        self.call("POST", f"/users/{user}")
        start = time.perf_counter()
        reply = self.call("POST", f"/users/{user}/server", json=self.options)
        if reply.status_code not in (201, 202):
            raise RuntimeError(f"spawn of {user} failed: {reply.status_code} {reply.text}")
        while True:
            server = self.call("GET", f"/users/{user}").json()["servers"].get("")
            if server is None:
                raise RuntimeError(f"the server of {user} failed to start: see the hub's log")
            if server.get("ready"):
                return time.perf_counter() - start
            time.sleep(0.05)

    def stop(self, user: str) -> None:
        self.call("DELETE", f"/users/{user}/server")
        while self.call("GET", f"/users/{user}").json()["servers"]:
            time.sleep(0.1)


def measure(client: Client, runs: int) -> tuple[list[float], float]:
    sequential = []
    for number in range(runs):
        sequential.append(client.spawn_until_ready(f"seq{number}"))
        client.stop(f"seq{number}")
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=runs) as pool:
        list(pool.map(client.spawn_until_ready, [f"par{n}" for n in range(runs)]))
    concurrent = time.perf_counter() - start
    for number in range(runs):
        client.stop(f"par{number}")
    return sequential, concurrent


def trenv_hub(image: str, runs: int, state: Path) -> tuple[list[float], float]:
    suffix = secrets.token_hex(2)
    settings = Settings(
        home=state / "trenv",
        hub_public_port=free_port(),
        hub_api_port=free_port(),
        web_api_port=free_port(),
        proxy_api_port=free_port(),
        network_name=f"trenv-bench-{suffix}",
        bridge_name=f"brb-{suffix}",
    )
    settings.ensure_dirs()
    upgrade(settings)
    digest = docker.from_env().images.get(image).id
    with transaction(settings) as session:
        users.add_user(session, actor="bench", username="admin", roles={GlobalRole.admin})
        images.record_image(session, actor="bench", name="bench/nb", tag="1", digest=digest)
        images.approve_image(session, approver="admin", reference="bench/nb:1")
        projects.create_project(
            session, actor="bench", slug="bench", title="bench", policy_profile="sacro",
            end_date=dt.date.today() + dt.timedelta(days=1),
        )  # fmt: skip
        projects.set_image(session, actor="bench", slug="bench", image_ref="bench/nb:1")
        for name in [f"seq{n}" for n in range(runs)] + [f"par{n}" for n in range(runs)]:
            users.add_user(session, actor="bench", username=name)
            projects.add_member(
                session, actor="bench", slug="bench", username=name, role=MemberRole.researcher
            )
    dispose_engines()
    token = secrets.token_hex(32)
    try:
        start_hub(settings, operator_token=token)
        client = Client(f"http://127.0.0.1:{settings.hub_public_port}", token, {"project": "bench"})
        return measure(client, runs)
    finally:
        stop_hub(settings)
        remove_network(docker.from_env(), network_spec(settings))


def plain_hub(image: str, runs: int, state: Path) -> tuple[list[float], float]:
    gateway = docker.from_env().networks.get("bridge").attrs["IPAM"]["Config"][0]["Gateway"]
    token = secrets.token_hex(32)
    port = free_port()
    env = {
        **os.environ,
        "BENCH_PORT": str(port),
        "BENCH_API_PORT": str(free_port()),
        "BENCH_PROXY_PORT": str(free_port()),
        "BENCH_GATEWAY": gateway,
        "BENCH_STATE": str(state),
        "BENCH_IMAGE": docker.from_env().images.get(image).id,
        "BENCH_TOKEN": token,
    }
    hub = subprocess.Popen(
        [str(Path(sys.executable).with_name("jupyterhub")), "-f",
         str(REPO / "benchmarks" / "plain_hub_config.py")],
        cwd=state, env=env, stdout=(state / "plain.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if requests.get(f"{url}/hub/api/", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        return measure(Client(url, token, {}), runs)
    finally:
        hub.terminate()
        hub.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--image", default="trenv/notebook:demo")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trenv-bench-") as tmp:
        state = Path(tmp)
        plain = plain_hub(args.image, args.runs, state)
        locked = trenv_hub(args.image, args.runs, state)
    print(f"\nspawn-to-ready, {args.runs} sequential spawns and {args.runs} concurrent spawns")
    print(f"{'':28}{'plain DockerSpawner':>22}{'trenv (locked down)':>22}{'ratio':>8}")
    p_med, t_med = statistics.median(plain[0]), statistics.median(locked[0])
    print(f"{'sequential median (s)':28}{p_med:22.2f}{t_med:22.2f}{t_med / p_med:8.2f}")
    p_max, t_max = max(plain[0]), max(locked[0])
    print(f"{'sequential slowest (s)':28}{p_max:22.2f}{t_max:22.2f}{t_max / p_max:8.2f}")
    print(
        f"{'10 concurrent, all ready (s)':28}{plain[1]:22.2f}{locked[1]:22.2f}"
        f"{locked[1] / plain[1]:8.2f}"
    )


if __name__ == "__main__":
    main()
