"""`trenv hub ...` (start, stop, status, check-network) and `trenv image build`."""

from __future__ import annotations

import secrets
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from trenv.cli.common import (
    JsonOption,
    console,
    err_console,
    ok,
    print_json,
    print_table,
    session_scope,
    state,
    user_errors,
)
from trenv.config import Settings
from trenv.images import BuiltImage
from trenv.registry import images

hub_app = typer.Typer(
    help="The JupyterHub that runs the notebook containers.", no_args_is_help=True
)


def operator_token(settings: Settings) -> str:
    """The hub API token for host automation, created once and kept 0600 in TRENV_HOME."""
    from trenv.hub.hubconfig import hub_state_dir

    path: Path = hub_state_dir(settings) / "operator-token"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


@hub_app.command("start")
def hub_start() -> None:
    """Start the hub in the background (creates the network and firewall rules)."""
    from trenv.hub.process import log_file, public_url, start_hub

    settings = state.settings
    with user_errors():
        pid = start_hub(settings, operator_token=operator_token(settings))
    ok(f"hub running at {public_url(settings)} (pid {pid}, log {log_file(settings)})")


@hub_app.command("stop")
def hub_stop() -> None:
    """Stop the hub, its proxy and the notebook containers."""
    from trenv.hub.process import stop_hub

    stopped = stop_hub(state.settings)
    ok("hub stopped" if stopped else "hub was not running")


@hub_app.command("status")
def hub_status(as_json: bool = JsonOption) -> None:
    """Is the hub running?"""
    from trenv.hub.process import public_url, running_pid

    pid = running_pid(state.settings)
    data = {"running": pid is not None, "pid": pid, "url": public_url(state.settings)}
    if as_json:
        print_json(data)
    else:
        console.print(f"running at {data['url']} (pid {pid})" if pid else "not running")
    if pid is None:
        raise typer.Exit(1)


@hub_app.command("check-network")
def hub_check_network(as_json: bool = JsonOption) -> None:
    """Report what holds of the containers' network isolation; exit 1 if anything fails."""
    import docker

    from trenv.hub.hubconfig import network_spec
    from trenv.hub.network import check_network

    checks = check_network(docker.from_env(), network_spec(state.settings))
    if as_json:
        print_json([c.__dict__ for c in checks])
    else:
        print_table(
            "Network isolation",
            ["check", "holds", "detail"],
            [[c.name, "yes" if c.ok else "NO", c.detail] for c in checks],
        )
    if not all(c.ok for c in checks):
        if not as_json:
            err_console.print("[bold red]Isolation incomplete:[/] run `trenv hub start`.")
        raise typer.Exit(1)


def build_with_progress(kind: str, tag: str | None) -> BuiltImage:
    """Build an image with a Rich progress bar per stage; exit 2 with the reason on failure."""
    from trenv.images import ImageError, build_image

    settings = state.settings
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    )
    tasks: dict[str, int] = {}

    def report(stage: str, completed: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage, total=max(total, 1))
        progress.update(tasks[stage], completed=completed, total=max(total, 1))

    try:
        with progress:
            return build_image(
                kind,
                settings=settings,
                progress_callback=report,
                tag=tag,
                name=settings.notebook_image if kind == "notebook" else None,
            )
    except ImageError as error:
        err_console.print(f"[bold red]Error:[/] {error}")
        raise typer.Exit(2) from None


def _keep_lock(kind: str, built: BuiltImage) -> None:
    """Keep the lock file the image was built from, so its package list stays readable."""
    from trenv.admin.image_contents import keep_lock
    from trenv.hashing import file_sha256
    from trenv.images.paths import repo_root

    lock = repo_root() / "images" / kind / "requirements.lock"
    if lock.is_file() and file_sha256(lock) == built.lock_sha256:
        keep_lock(state.settings, lock)


def image_build(
    kind: str = typer.Argument("notebook", help="Which image: notebook."),
    tag: str | None = typer.Option(
        None, "--tag", help="Default: trenv's version and the lock file's digest."
    ),
) -> None:
    """Build an image offline from the locked wheelhouse and record it (unapproved)."""
    built = build_with_progress(kind, tag)
    with session_scope() as session:
        images.record_image(
            session,
            actor=state.acting(),
            name=built.name,
            tag=built.tag,
            digest=built.digest,
            labels=built.labels,
        )
    _keep_lock(kind, built)
    ok(
        f"built {built.reference} ({built.digest[:19]}…, {built.size_bytes / 1e9:.2f} GB); "
        f"approve it with `trenv --as ADMIN image approve {built.reference}`"
    )
