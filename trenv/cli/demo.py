"""`trenv demo ...` and `trenv data synth`: the commands that stand up the demo installation.

They live apart from the core commands because what they call (``trenv.demo``) is outside
the TRE's trust boundary. `trenv data synth` keeps its place under `trenv data` (registered
through ``GROUP_EXTRAS``) but its code is here, with the generator it runs. Every import
of ``trenv.demo`` happens inside a command, so `trenv data --help` and `trenv demo --help`
load no synthetic-data code.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from trenv.cli.common import err_console, ok, print_table, session_scope, state, user_errors
from trenv.errors import Invalid

demo_app = typer.Typer(help="The demo installation.", no_args_is_help=True)


def data_synth(
    out_dir: Path = typer.Argument(..., help="Directory for the CSV and Parquet files."),
    persons: int = typer.Option(..., "--persons", help="Size of the synthetic population."),
    seed: int = typer.Option(0, "--seed", help="Same seed and size give identical files."),
) -> None:
    """Write synthetic extracts of all seven sources plus their linkage ground truth."""
    from trenv.demo.synth import SynthConfig, generate
    from trenv.vault.progress import rich_progress

    with user_errors():
        try:
            config = SynthConfig(persons=persons, seed=seed)
        except ValueError as error:
            raise Invalid(f"{error}.", "Pass --persons between 1 and 50000000.") from None
    with rich_progress(err_console) as hook:
        result = generate(out_dir, config, progress=hook)
    print_table(
        "Synthetic sources",
        ["source", "rows", "files"],
        [[n, result.rows[n], ", ".join(p.name for p in f)] for n, f in result.files.items()],
    )
    ok(f"synthetic data in {out_dir} (ground truth: {result.ground_truth})")


@demo_app.command("seed")
def demo_seed() -> None:
    """Create the demo people, suppliers and project (safe to run again)."""
    from trenv.demo import installation

    with session_scope() as session:
        created = installation.seed(session)
    ok("demo registry ready" + (f": created {', '.join(created)}" if created else " (no changes)"))


@demo_app.command("logins")
def demo_logins() -> None:
    """Give the demo users passwords and TOTP secrets (kept in TRENV_HOME/credentials.json)."""
    from trenv.cli.hub import operator_token
    from trenv.demo import installation
    from trenv.hub.process import public_url
    from trenv.layout import credentials_file

    settings = state.settings
    path = credentials_file(settings)
    with session_scope() as session:
        logins = installation.provision_logins(session, path)
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
    from trenv.demo import installation

    built = build_with_progress("notebook", tag=tag)
    with session_scope() as session:
        installation.use_image(session, built.reference, built.digest, built.labels)
    ok(f"project {installation.PROJECT} runs on {built.reference} ({built.digest[:19]}…)")


@demo_app.command("data")
def demo_data_cmd(
    persons: int = typer.Option(200_000, "--persons", help="Size of the synthetic population."),
) -> None:
    """Synthesise, ingest, link, grant (steward + controller), budget and publish the demo
    project's data (safe to run again)."""
    from trenv.demo import data
    from trenv.demo.installation import PROJECT

    with user_errors():
        prepared = data.prepare(state.settings, PROJECT, persons=persons)
    done = "; ".join(prepared.created) or "no changes"
    ok(f"{PROJECT} has {', '.join(prepared.datasets)} published ({done})")


@demo_app.command("notebooks")
def demo_notebooks_cmd() -> None:
    """Copy the research notebooks into rosa's workspace of the demo project."""
    from trenv.demo.installation import PROJECT
    from trenv.demo.notebooks import copy_to_workspace

    copied = copy_to_workspace(state.settings, PROJECT, "rosa")
    ok(f"notebooks in rosa's workspace ({len(copied)} copied, the others were there)")


@demo_app.command("request")
def demo_request_cmd() -> None:
    """Make sure an export request of rosa's waits for the checkers: run notebook 1 in her
    own server (spawned through the running hub's API) unless one already waits."""
    from trenv.cli.hub import operator_token
    from trenv.demo.installation import PROJECT
    from trenv.demo.notebooks import HubOperator, ensure_waiting_request
    from trenv.hub.process import public_url
    from trenv.images.engine import ensure_engine

    settings = state.settings
    hub = HubOperator(public_url(settings), operator_token(settings))
    with user_errors():
        request_id, created = ensure_waiting_request(
            settings, hub, ensure_engine(), PROJECT, "rosa"
        )
    ok(
        f"export request #{request_id} waits in the checkers' queue"
        + ("" if created else " (already there)")
    )
