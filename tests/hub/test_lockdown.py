"""Break-out attempts from inside a real spawned container, and spawn refusals.

Stand-ins for the internet are only the documentation ranges (198.51.100.0/24,
203.0.113.0/24, 2001:db8::/32); the other targets are services this test starts itself.
"""

from __future__ import annotations

import json
import pwd
import re
import socket
import threading
from collections.abc import Iterator

import docker
import pytest
import requests

from tests.hub.conftest import Hub, login_session, run
from trenv.hub.account import container_account
from trenv.hub.hubconfig import network_spec
from trenv.hub.network import check_network, gateway_of
from trenv.layout import workspace_dir


@pytest.fixture(scope="module")
def rosa(hub: Hub) -> docker.models.containers.Container:
    reply = hub.spawn("rosa", "proj-a")
    assert reply.status_code in (201, 202), reply.text
    return hub.container("rosa")


@pytest.fixture(scope="module")
def bob(hub: Hub) -> docker.models.containers.Container:
    reply = hub.spawn("bob", "proj-b")
    assert reply.status_code in (201, 202), reply.text
    return hub.container("bob")


@pytest.fixture(scope="module")
def gateway(hub: Hub) -> str:
    return gateway_of(hub.docker.networks.get(hub.settings.network_name))


CONNECT = """
import socket, sys
family = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print('CONNECTED')
except OSError as e:
    print('BLOCKED', type(e).__name__, e)
"""


def connect(container: docker.models.containers.Container, host: str, port: int) -> str:
    _, output = container.exec_run(["python3", "-c", CONNECT, host, str(port)])
    return output.decode()


def test_dns_resolution_fails(rosa: docker.models.containers.Container) -> None:
    output = run(
        rosa,
        "import socket\n"
        "for name in ('trenv-probe.example', 'localhost.example.net'):\n"
        "    try:\n"
        "        socket.getaddrinfo(name, 443)\n"
        "        print('RESOLVED', name)\n"
        "    except socket.gaierror as e:\n"
        "        print('NO-DNS', e)\n",
    )
    assert "RESOLVED" not in output and output.count("NO-DNS") == 2, output


@pytest.mark.parametrize(
    ("host", "port"), [("198.51.100.7", 443), ("203.0.113.9", 80), ("2001:db8::1", 443)]
)
def test_tcp_to_the_outside_fails(
    rosa: docker.models.containers.Container, host: str, port: int
) -> None:
    assert connect(rosa, host, port).startswith("BLOCKED"), host


def test_udp_to_the_outside_fails(rosa: docker.models.containers.Container) -> None:
    output = run(
        rosa,
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.settimeout(2)\n"
        "try:\n"
        "    s.sendto(b'x', ('203.0.113.53', 53))\n"
        "    s.recvfrom(512)\n"
        "    print('ANSWERED')\n"
        "except OSError as e:\n"
        "    print('BLOCKED', e)\n",
    )
    assert output.startswith("BLOCKED"), output


def test_another_users_container_is_unreachable(
    hub: Hub,
    rosa: docker.models.containers.Container,
    bob: docker.models.containers.Container,
) -> None:
    bob.reload()
    bob_ip = bob.attrs["NetworkSettings"]["Networks"][hub.settings.network_name]["IPAddress"]
    assert bob_ip
    assert connect(rosa, bob_ip, 8888).startswith("BLOCKED")


@pytest.fixture
def host_service() -> Iterator[int]:
    """A TCP service on the host listening on all interfaces, as a careless admin might run."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", 0))
    server.listen()
    server.settimeout(0.5)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join()
    server.close()


def test_host_services_are_unreachable_but_the_hub_api_is(
    hub: Hub, rosa: docker.models.containers.Container, gateway: str, host_service: int
) -> None:
    assert connect(rosa, gateway, host_service).startswith("BLOCKED")
    # The positive control: the one host port a container needs still answers.
    assert connect(rosa, gateway, hub.settings.hub_api_port) == "CONNECTED\n"


def test_data_is_read_only_and_root_filesystem_too(
    rosa: docker.models.containers.Container,
) -> None:
    output = run(
        rosa,
        "import os\n"
        "for path in ('/data/x', '/usr/x', '/etc/x', '/x'):\n"
        "    try:\n"
        "        open(path, 'w').close(); print('WROTE', path)\n"
        "    except OSError as e:\n"
        "        print('REFUSED', path, e.errno)\n"
        "open('/home/jovyan/work/ok.txt', 'w').write('workspace is writable')\n"
        "print('WORKSPACE-OK')\n",
    )
    assert "WROTE" not in output and output.count("REFUSED") == 4, output
    assert "WORKSPACE-OK" in output


def test_becoming_root_fails(rosa: docker.models.containers.Container) -> None:
    output = run(
        rosa,
        "import os, shutil, subprocess\n"
        "print('su', shutil.which('su'), 'sudo', shutil.which('sudo'))\n"
        "try:\n"
        "    os.setuid(0); print('SETUID-OK')\n"
        "except PermissionError:\n"
        "    print('SETUID-REFUSED')\n"
        "found = subprocess.run(['find', '/', '-xdev', '-perm', '/6000', '-type', 'f'],\n"
        "                       capture_output=True, text=True).stdout.split()\n"
        "print('SETUID-FILES', found)\n",
    )
    assert "su None sudo None" in output
    assert "SETUID-REFUSED" in output and "SETUID-FILES []" in output, output


def test_no_docker_socket(rosa: docker.models.containers.Container) -> None:
    output = run(
        rosa,
        "import os, subprocess\n"
        "found = subprocess.run(['find', '/', '-xdev', '-name', 'docker.sock'],\n"
        "                       capture_output=True, text=True).stdout.split()\n"
        "known = [p for p in ('/var/run/docker.sock', '/run/docker.sock') if os.path.exists(p)]\n"
        "print(found + known, os.environ.get('DOCKER_HOST'))\n",
    )
    assert output.strip() == "[] None", output


def test_identity_capabilities_and_limits(
    hub: Hub, rosa: docker.models.containers.Container
) -> None:
    output = run(
        rosa,
        "import os, json\n"
        "status = dict(l.split(':', 1) for l in open('/proc/self/status') if ':' in l)\n"
        "def first(*paths):\n"
        "    for p in paths:\n"
        "        if os.path.exists(p): return open(p).read().strip()\n"
        "print(json.dumps({'uid': os.getuid(), 'cap': status['CapEff'].strip(),\n"
        "  'nnp': status['NoNewPrivs'].strip(),\n"
        "  'pids': first('/sys/fs/cgroup/pids.max', '/sys/fs/cgroup/pids/pids.max'),\n"
        "  'mem': first('/sys/fs/cgroup/memory.max',\n"
        "               '/sys/fs/cgroup/memory/memory.limit_in_bytes')}))\n",
    )
    facts = json.loads(output)
    # The dedicated system account (no login, no home), never a person's uid such as 1000.
    account = container_account(hub.settings, create=False)
    assert facts["uid"] == account.uid != 1000
    host_entry = pwd.getpwuid(account.uid)
    assert host_entry.pw_name == hub.settings.container_user
    assert host_entry.pw_shell == "/usr/sbin/nologin"
    assert workspace_dir(hub.settings, "proj-a", "rosa").stat().st_uid == account.uid
    assert int(facts["cap"], 16) == 0
    assert facts["nnp"] == "1"
    assert facts["pids"] == str(hub.settings.container_pids_limit)
    assert int(facts["mem"]) == 1024**3
    rosa.reload()
    host_config = rosa.attrs["HostConfig"]
    assert host_config["ReadonlyRootfs"] is True
    assert host_config["CapDrop"] == ["ALL"]
    assert host_config["NanoCpus"] or host_config["CpuQuota"]


def test_firewall_drops_link_local_and_reports_every_check(hub: Hub) -> None:
    checks = {c.name: c for c in check_network(hub.docker, network_spec(hub.settings))}
    assert all(c.ok for c in checks.values()), [c for c in checks.values() if not c.ok]
    assert checks["rule -d 169.254.0.0/16 -j DROP"].ok
    assert checks["internal"].ok and checks["no inter-container traffic"].ok


def test_non_member_cannot_spawn(hub: Hub) -> None:
    reply = hub.spawn("nina", "proj-a")
    assert reply.status_code == 403 and "not a member" in reply.json()["message"]


def test_expired_project_refuses_to_spawn(hub: Hub) -> None:
    reply = hub.spawn("nina", "old-project")
    assert reply.status_code == 403 and "ended on" in reply.json()["message"]


def test_unapproved_image_refuses_to_spawn(hub: Hub) -> None:
    reply = hub.spawn("nina", "proj-u")
    assert reply.status_code == 403 and "not approved" in reply.json()["message"]


def test_user_cannot_choose_the_image(hub: Hub) -> None:
    reply = hub.spawn("nina", "proj-b", image="trenv/unapproved:1")
    assert reply.status_code == 400 and "only 'project'" in reply.json()["message"]


def test_spawn_and_refusals_are_audited(hub: Hub, rosa: docker.models.containers.Container) -> None:
    from trenv.audit import events
    from trenv.store import transaction

    hub.spawn("nina", "proj-a")
    with transaction(hub.settings) as session:
        spawned = [e for e in events(session, action_prefix="server.spawn")]
        detail = [json.loads(e.detail) for e in spawned if e.action == "server.spawn"]
        refused = [e.actor for e in spawned if e.action == "server.spawn.refused"]
    assert any(d["project"] == "proj-a" and d["digest"].startswith("sha256:") for d in detail)
    assert "nina" in refused


def test_an_api_token_opens_no_notebook_server_not_even_its_owners(
    hub: Hub,
    rosa: docker.models.containers.Container,
    bob: docker.models.containers.Container,
) -> None:
    # A token an administrator made for rosa: a script on her own machine could drive her
    # kernels with it, so only her browser login is answered (trenv.lab.server.browser_only).
    rosa_token = hub.user_token("rosa")
    own = requests.get(
        f"{hub.url}/user/rosa/api/status",
        headers={"Authorization": f"token {rosa_token}"},
        timeout=30,
    )
    assert own.status_code == 403 and "browser login" in own.json()["message"], own.text[:300]
    other = requests.get(
        f"{hub.url}/user/bob/api/status",
        headers={"Authorization": f"token {rosa_token}"},
        timeout=30,
        allow_redirects=False,
    )
    assert other.status_code in (403, 404), other.status_code


def test_login_cookie_does_not_open_another_users_server(
    hub: Hub,
    rosa: docker.models.containers.Container,
    bob: docker.models.containers.Container,
) -> None:
    browser = login_session(hub, "rosa")
    # The browser follows the OAuth dance between the server and the hub, as a person would.
    own = browser.get(f"{hub.url}/user/rosa/lab", timeout=60)
    assert own.status_code == 200 and "JupyterLab" in own.text, (own.status_code, own.url)
    assert browser.get(f"{hub.url}/user/rosa/api/status", timeout=60).status_code == 200
    other = browser.get(f"{hub.url}/user/bob/lab", timeout=60)
    # The hub refuses to authorise Rosa for Bob's server: 403, never Bob's page.
    assert other.status_code == 403, (other.status_code, other.url)
    assert "JupyterLab" not in other.text


def test_check_network_command_reports_what_holds(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from trenv.cli import app

    for name, value in hub.settings.as_environment().items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["hub", "check-network", "--json"])
    assert result.exit_code == 0, result.output
    assert all(check["ok"] for check in json.loads(result.output))
    monkeypatch.setenv("TRENV_NETWORK_NAME", "trenv-never-created")
    missing = CliRunner().invoke(app, ["hub", "check-network"])
    assert missing.exit_code == 1 and "no Docker network" in missing.output


def test_spawn_form_lists_only_the_users_active_projects(hub: Hub) -> None:
    browser = login_session(hub, "nina")
    form = browser.get(f"{hub.url}/hub/spawn", timeout=60)
    assert form.status_code == 200
    offered = set(re.findall(r'<option value="([^"]+)"', form.text))
    # nina belongs to proj-b, proj-u and the ended old-project; proj-a is rosa's.
    assert offered == {"proj-b", "proj-u"}, offered
