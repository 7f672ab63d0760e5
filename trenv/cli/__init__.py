"""The `trenv` command: an administrator's and data steward's door to the registry.

Every command runs in one transaction: a refused command prints the problem and its fix,
exits with status 2, and writes nothing.

A command group is imported only when it is used: to add one, name its module and Typer
in ``GROUPS`` (not ``app.add_typer``), and keep heavy imports out of ``cli/common.py``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

import typer
from typer.core import TyperGroup
from typer.main import get_group_from_info
from typer.models import TyperInfo

from trenv import __version__
from trenv.cli.common import (
    EXIT_USER_ERROR,
    fail,
    ok,
    session_scope,
    state,
    user_errors,
)
from trenv.config import get_settings

# The command groups, loaded only when used (or listed by --help): importing them all made
# every command, `trenv airlock verify` included, pay for pandas, SQLAlchemy, matplotlib and
# Splink at start (about 2,000 modules, 4 s or more). Name -> (module, Typer attribute).
GROUPS: dict[str, tuple[str, str]] = {
    "db": ("trenv.cli", "db_app"),
    "org": ("trenv.cli.people", "org_app"),
    "user": ("trenv.cli.people", "user_app"),
    "project": ("trenv.cli.projects", "project_app"),
    "dataset": ("trenv.cli.data_catalogue", "dataset_app"),
    "data": ("trenv.cli.data", "data_app"),
    "grant": ("trenv.cli.data_catalogue", "grant_app"),
    "image": ("trenv.cli.data_catalogue", "image_app"),
    "audit": ("trenv.cli.audit", "audit_app"),
    "demo": ("trenv.cli", "demo_app"),
    "hub": ("trenv.cli.hub", "hub_app"),
    "budget": ("trenv.cli.budget", "budget_app"),
    "airlock": ("trenv.cli.airlock", "airlock_app"),
    "secrets": ("trenv.cli.secrets", "secrets_app"),
    "signing": ("trenv.cli.signing_key", "signing_app"),
}
# Commands that live in another group's module: group -> [(module, function, name)].
GROUP_EXTRAS: dict[str, list[tuple[str, str, str]]] = {
    "image": [("trenv.cli.hub", "image_build", "build")],
    "project": [("trenv.cli.data", "project_close", "close")],
}


def _load_group(name: str) -> Any:
    """The click group of ``name``, importing its module now."""
    module, attribute = GROUPS[name]
    sub: typer.Typer = getattr(importlib.import_module(module), attribute)
    for extra_module, function, command in GROUP_EXTRAS.get(name, []):
        if all(c.name != command for c in sub.registered_commands):
            sub.command(command)(getattr(importlib.import_module(extra_module), function))
    return get_group_from_info(
        TyperInfo(sub, name=name),
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode,
        suggest_commands=app.suggest_commands,
    )


class _LazyCommands(MutableMapping[str, Any]):
    """The root's commands: the eager ones, then the groups, each loaded on first access."""

    def __init__(self, eager: Mapping[str, Any], lazy: Callable[[str], Any]) -> None:
        self._loaded = dict(eager)
        self._lazy = lazy

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            if name not in GROUPS:
                raise KeyError(name)
            self._loaded[name] = self._lazy(name)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:  # a stable order, whatever was loaded already
        yield from (n for n in self._loaded if n not in GROUPS)
        yield from GROUPS

    def __len__(self) -> int:
        return len(set(self._loaded) | set(GROUPS))


class LazyGroup(TyperGroup):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = _LazyCommands(self.commands, _load_group)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # names only: loads nothing


app = typer.Typer(
    help="trenv: a trusted research environment for justice data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=LazyGroup,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo installation.", no_args_is_help=True)


@app.callback()
def root(
    acting_as: str | None = typer.Option(
        None, "--as", help="The trenv user on whose authority this runs (or TRENV_ACTOR)."
    ),
) -> None:
    get_settings.cache_clear()  # each invocation reads the environment afresh
    state.actor = acting_as


@app.command()
def version() -> None:
    """Print trenv's version."""
    typer.echo(__version__)


@app.command()
def init(
    installation: str | None = typer.Option(
        None,
        "--installation",
        help="The name signed releases and audit anchors carry, set when the signing key is "
        "created (default: this host's name).",
    ),
) -> None:
    """Create TRENV_HOME, its directories, the database and the signing key (safe to rerun)."""
    from trenv import audit, signing
    from trenv.store import current_revision, upgrade
    from trenv.store.migrate import head_revision

    settings = state.settings
    settings.ensure_dirs()
    before = current_revision(settings)
    upgrade(settings)
    try:
        key, created = signing.ensure_signing_key(settings, installation)
    except (signing.SigningKeyError, ValueError, OSError) as error:
        fail(str(error))
    signer = {"installation": key.identity.installation, "fingerprint": key.identity.fingerprint}
    if before is None or created:
        with session_scope() as session:
            if before is None:
                detail = {"version": __version__, "schema": head_revision()}
                audit.record(
                    session,
                    actor=state.acting(),
                    action="system.init",
                    object_type="system",
                    object_id="trenv",
                    detail=detail | ({"signing_key": signer} if created else {}),
                )
            else:  # an installation from before signing: its key is new now
                audit.record(
                    session,
                    actor=state.acting(),
                    action="system.signing_key",
                    object_type="system",
                    object_id="signing",
                    detail=signer,
                )
    ok(f"trenv home ready at {settings.home.absolute()} (schema {head_revision()})")
    ok(f"releases and audit anchors are signed by {key.identity.describe()}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations."""
    from trenv.store import current_revision, upgrade

    settings = state.settings
    before = current_revision(settings)
    upgrade(settings)
    after = current_revision(settings)
    ok(f"database at {after}" + ("" if before == after else f" (was {before or 'empty'})"))


@db_app.command("current")
def db_current() -> None:
    """Print the database's schema revision."""
    from trenv.store import current_revision

    typer.echo(current_revision(state.settings) or "empty")


@demo_app.command("seed")
def demo_seed() -> None:
    """Create the demo people, suppliers and project (safe to run again)."""
    from trenv import demo

    with session_scope() as session:
        created = demo.seed(session)
    ok("demo registry ready" + (f": created {', '.join(created)}" if created else " (no changes)"))


@demo_app.command("logins")
def demo_logins() -> None:
    """Give the demo users passwords and TOTP secrets (kept in TRENV_HOME/credentials.json)."""
    from trenv import demo
    from trenv.cli.hub import operator_token
    from trenv.hub.process import public_url

    settings = state.settings
    path = settings.home / "credentials.json"
    with session_scope() as session:
        logins = demo.provision_logins(session, path)
    logins["hub"] = {
        "url": public_url(settings),
        "api_url": f"{public_url(settings)}/hub/api",
        "operator_api_token": operator_token(settings),
    }
    path.write_text(json.dumps(logins, indent=2))
    ok(f"{len(logins['users'])} demo logins and the hub API token in {path}")


@demo_app.command("image")
def demo_image(
    tag: str = typer.Option("demo", "--tag"),
) -> None:
    """Build the notebook image, approve it as the demo admin and assign it to the project."""
    from trenv import demo
    from trenv.cli.hub import build_with_progress

    built = build_with_progress("notebook", tag=tag)
    with session_scope() as session:
        demo.use_image(session, built.reference, built.digest, built.labels)
    ok(f"project {demo.PROJECT} runs on {built.reference} ({built.digest[:19]}…)")


@demo_app.command("data")
def demo_data_cmd(
    persons: int = typer.Option(200_000, "--persons", help="Size of the synthetic population."),
) -> None:
    """Synthesise, ingest, link, grant (steward + controller), budget and publish the demo
    project's data (safe to run again)."""
    from trenv import demo, demo_data

    with user_errors():
        prepared = demo_data.prepare(state.settings, demo.PROJECT, persons=persons)
    done = "; ".join(prepared.created) or "no changes"
    ok(f"{demo.PROJECT} has {', '.join(prepared.datasets)} published ({done})")


@demo_app.command("notebooks")
def demo_notebooks_cmd() -> None:
    """Copy the research notebooks into rosa's workspace of the demo project."""
    from trenv import demo
    from trenv.demo_notebooks import copy_to_workspace

    copied = copy_to_workspace(state.settings, demo.PROJECT, "rosa")
    ok(f"notebooks in rosa's workspace ({len(copied)} copied, the others were there)")


@demo_app.command("request")
def demo_request_cmd() -> None:
    """Make sure an export request of rosa's waits for the checkers: run notebook 1 in her
    own server (spawned through the running hub's API) unless one already waits."""
    from trenv import demo
    from trenv.cli.hub import operator_token
    from trenv.demo_notebooks import HubOperator, ensure_waiting_request
    from trenv.hub.process import public_url
    from trenv.images.engine import ensure_engine

    settings = state.settings
    hub = HubOperator(public_url(settings), operator_token(settings))
    with user_errors():
        request_id, created = ensure_waiting_request(
            settings, hub, ensure_engine(), demo.PROJECT, "rosa"
        )
    ok(
        f"export request #{request_id} waits in the checkers' queue"
        + ("" if created else " (already there)")
    )


def main() -> None:
    app()


__all__ = ["EXIT_USER_ERROR", "app", "main"]
