"""The `trenv` command: an administrator's and data steward's door to the registry.

Every command runs in one transaction: a refused command prints the problem and its fix,
exits with status 2, and writes nothing.

A command group is imported only when it is used: to add one, name its module and Typer
in ``GROUPS`` (not ``app.add_typer``), and keep heavy imports out of ``cli/common.py``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

import typer
from typer.core import TyperGroup
from typer.main import get_group_from_info
from typer.models import TyperInfo

from trenv import __version__
from trenv.audit_actions import AuditAction
from trenv.cli.common import (
    EXIT_USER_ERROR,
    fail,
    ok,
    session_scope,
    state,
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
    "demo": ("trenv.cli.demo", "demo_app"),
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
    "data": [("trenv.cli.demo", "data_synth", "synth")],  # the generator is demo code
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
                    action=AuditAction.system_init,
                    object_type="system",
                    object_id="trenv",
                    detail=detail | ({"signing_key": signer} if created else {}),
                )
            else:  # an installation from before signing: its key is new now
                audit.record(
                    session,
                    actor=state.acting(),
                    action=AuditAction.system_signing_key,
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


def main() -> None:
    app()


__all__ = ["EXIT_USER_ERROR", "app", "main"]
