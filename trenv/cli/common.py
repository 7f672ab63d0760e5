"""What every command shares: settings, the acting person, transactions, output."""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from trenv.config import Settings, get_settings
from trenv.errors import TrenvError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# SQLAlchemy and trenv.store are imported where a command opens the database, not here:
# commands that need no database (`trenv airlock verify`) start without them.

console = Console()
err_console = Console(stderr=True)

EXIT_USER_ERROR = 2

JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")


def fail(message: str) -> NoReturn:
    """Print 'Error: ...' and exit with status 2; the caller wrote nothing."""
    err_console.print(f"[bold red]Error:[/] {message}", highlight=False)
    raise typer.Exit(EXIT_USER_ERROR)


@dataclass
class CliState:
    actor: str | None = None

    @property
    def settings(self) -> Settings:
        return get_settings()

    def acting(self) -> str:
        """Who the audit log names: --as, TRENV_ACTOR, else the operator's OS account."""
        return self.actor or os.environ.get("TRENV_ACTOR") or f"operator:{getpass.getuser()}"

    def person(self) -> str:
        """Commands that carry a person's authority (approvals) need a named trenv user."""
        actor = self.actor or os.environ.get("TRENV_ACTOR")
        if not actor:
            fail(
                "this command acts as a person: pass --as USER (before the command) "
                "or set TRENV_ACTOR."
            )
        return actor


state = CliState()


@contextmanager
def session_scope() -> Iterator[Session]:
    """One transaction per command: a refused command writes nothing."""
    from trenv.store import transaction

    ensure_schema_current()
    try:
        with transaction(state.settings) as session:
            yield session
    except TrenvError as error:
        fail(str(error))


def ensure_schema_current() -> None:
    from sqlalchemy.exc import OperationalError

    from trenv.store import current_revision
    from trenv.store.migrate import head_revision

    try:
        current = current_revision(state.settings)
    except OperationalError:
        current = None
    if current != head_revision():
        fail(
            f"the database at {state.settings.database_url} is not initialised "
            f"(schema {current or 'empty'}, expected {head_revision()}): "
            "run `trenv init` or `trenv db upgrade`."
        )


@contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except TrenvError as error:
        fail(str(error))


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    keep_whole: Sequence[str] = (),
) -> None:
    """A Rich table; the first column and those in ``keep_whole`` are never wrapped."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for index, column in enumerate(columns):
        table.add_column(column, no_wrap=index == 0 or column in keep_whole, overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(table)


def ok(message: str) -> None:
    console.print(f"[green]✓[/] {message}", highlight=False)
