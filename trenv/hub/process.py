"""Start, stop and wait for the hub as a background process (`trenv hub start|stop`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from trenv.config import Settings
from trenv.errors import Invalid
from trenv.hub.hubconfig import OPERATOR_TOKEN_ENV, hub_state_dir

CONFIG_FILE = Path(__file__).resolve().parents[2] / "hub_config" / "jupyterhub_config.py"


def pid_file(settings: Settings) -> Path:
    return hub_state_dir(settings) / "hub.pid"


def log_file(settings: Settings) -> Path:
    return hub_state_dir(settings) / "hub.log"


def running_pid(settings: Settings) -> int | None:
    try:
        pid = int(pid_file(settings).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def _alive(pid: int) -> bool:
    try:
        # Reap it if it is our own child (tests start the hub in-process), else just probe.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def public_url(settings: Settings) -> str:
    return f"http://{settings.hub_public_ip}:{settings.hub_public_port}"


def start_hub(settings: Settings, *, operator_token: str, timeout: float = 90) -> int:
    """Start JupyterHub in the background and wait until its API answers; return its pid."""
    if (pid := running_pid(settings)) is not None:
        return pid
    if not CONFIG_FILE.is_file():
        raise Invalid(f"hub configuration {CONFIG_FILE} is missing.", "Reinstall trenv.")
    env = {**os.environ, **settings.as_environment(), OPERATOR_TOKEN_ENV: operator_token}
    jupyterhub = Path(sys.executable).with_name("jupyterhub")
    log = log_file(settings).open("ab")
    process = subprocess.Popen(
        [str(jupyterhub), "-f", str(CONFIG_FILE)],
        cwd=hub_state_dir(settings),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # survives the shell that started it; stopped by pid
    )
    pid_file(settings).write_text(str(process.pid))
    deadline = time.monotonic() + timeout
    api = f"{public_url(settings)}/hub/api/"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Invalid(
                f"the hub exited with status {process.returncode} while starting.",
                f"See its log: {log_file(settings)}",
            )
        try:
            if httpx.get(api, timeout=2).status_code == 200:
                return process.pid
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(0.3)
    stop_hub(settings)
    raise Invalid(f"the hub did not answer within {timeout:.0f} s.", f"See {log_file(settings)}")


def stop_hub(settings: Settings, timeout: float = 60) -> bool:
    """Stop the hub (it stops the proxy and, with cleanup_servers, the containers)."""
    pid = running_pid(settings)
    if pid is None:
        pid_file(settings).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            break
        time.sleep(0.2)
    else:
        os.killpg(pid, signal.SIGKILL)
    pid_file(settings).unlink(missing_ok=True)
    return True
