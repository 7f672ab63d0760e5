"""The `trenv` command: an administrator's and data steward's door to the registry.

Every command runs in one transaction: a refused command prints the problem and its fix,
exits with status 2, and writes nothing.
"""

from __future__ import annotations

import json

import typer

from trenv import __version__, audit, demo
from trenv.cli.airlock import airlock_app
from trenv.cli.budget import budget_app
from trenv.cli.common import (
    EXIT_USER_ERROR,
    JsonOption,
    err_console,
    ok,
    print_json,
    print_table,
    session_scope,
    state,
    user_errors,
)
from trenv.cli.data import data_app, project_close
from trenv.cli.data_catalogue import dataset_app, grant_app, image_app
from trenv.cli.hub import hub_app, image_build
from trenv.cli.people import org_app, user_app
from trenv.cli.projects import project_app
from trenv.cli.secrets import secrets_app
from trenv.cli.serialise import audit_dict
from trenv.config import get_settings
from trenv.store import current_revision, upgrade
from trenv.store.migrate import head_revision

app = typer.Typer(
    help="trenv: a trusted research environment for justice data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo installation.", no_args_is_help=True)

app.add_typer(db_app, name="db")
app.add_typer(org_app, name="org")
app.add_typer(user_app, name="user")
app.add_typer(project_app, name="project")
app.add_typer(dataset_app, name="dataset")
app.add_typer(data_app, name="data")
app.add_typer(grant_app, name="grant")
app.add_typer(image_app, name="image")
app.add_typer(audit_app, name="audit")
app.add_typer(demo_app, name="demo")
app.add_typer(hub_app, name="hub")
app.add_typer(budget_app, name="budget")
app.add_typer(airlock_app, name="airlock")
app.add_typer(secrets_app, name="secrets")
image_app.command("build")(image_build)
project_app.command("close")(project_close)


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
def init() -> None:
    """Create TRENV_HOME, its directories and the database (safe to run again)."""
    settings = state.settings
    settings.ensure_dirs()
    before = current_revision(settings)
    upgrade(settings)
    if before is None:
        with session_scope() as session:
            audit.record(
                session,
                actor=state.acting(),
                action="system.init",
                object_type="system",
                object_id="trenv",
                detail={"version": __version__, "schema": head_revision()},
            )
    ok(f"trenv home ready at {settings.home.absolute()} (schema {head_revision()})")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations."""
    settings = state.settings
    before = current_revision(settings)
    upgrade(settings)
    after = current_revision(settings)
    ok(f"database at {after}" + ("" if before == after else f" (was {before or 'empty'})"))


@db_app.command("current")
def db_current() -> None:
    """Print the database's schema revision."""
    typer.echo(current_revision(state.settings) or "empty")


@audit_app.command("verify")
def audit_verify(as_json: bool = JsonOption) -> None:
    """Recompute the hash chain; exit 1 naming the first bad event."""
    with session_scope() as session:
        result = audit.verify(session, state.settings.audit_anchor)
    if as_json:
        print_json(result.__dict__)
    elif result.ok:
        ok(f"audit chain intact: {result.checked} events verified")
    else:
        err_console.print(f"[bold red]Audit chain broken:[/] {result.problem}", highlight=False)
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("tail")
def audit_tail(
    count: int = typer.Option(20, "-n", "--count", min=1), as_json: bool = JsonOption
) -> None:
    """Show the newest audit events."""
    with session_scope() as session:
        rows = [audit_dict(e) for e in audit.tail(session, count)]
    if as_json:
        print_json(rows)
        return
    print_table(
        "Audit log",
        ["#", "time (UTC)", "actor", "action", "object", "detail"],
        [
            [r["id"], r["occurred_at"][:19], r["actor"], r["action"], r["object"], r["detail"]]
            for r in rows
        ],
        keep_whole=("action",),
    )


@demo_app.command("seed")
def demo_seed() -> None:
    """Create the demo people, suppliers and project (safe to run again)."""
    with session_scope() as session:
        created = demo.seed(session)
    ok("demo registry ready" + (f": created {', '.join(created)}" if created else " (no changes)"))


@demo_app.command("logins")
def demo_logins() -> None:
    """Give the demo users passwords and TOTP secrets (kept in TRENV_HOME/credentials.json)."""
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
    from trenv import demo_data

    with user_errors():
        prepared = demo_data.prepare(state.settings, demo.PROJECT, persons=persons)
    done = "; ".join(prepared.created) or "no changes"
    ok(f"{demo.PROJECT} has {', '.join(prepared.datasets)} published ({done})")


@demo_app.command("notebooks")
def demo_notebooks_cmd() -> None:
    """Copy the research notebooks into rosa's workspace of the demo project."""
    from trenv.demo_notebooks import copy_to_workspace

    copied = copy_to_workspace(state.settings, demo.PROJECT, "rosa")
    ok(f"notebooks in rosa's workspace ({len(copied)} copied, the others were there)")


@demo_app.command("request")
def demo_request_cmd() -> None:
    """Make sure an export request of rosa's waits for the checkers: run notebook 1 in her
    own server (spawned through the running hub's API) unless one already waits."""
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
