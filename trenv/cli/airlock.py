"""`trenv airlock`: the export queue and the verification of released bundles.

Reviewing happens in the web pages (where the previews are); the CLI lists requests for
automation and lets anyone who received a bundle check it against its disclosure record.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import typer

from trenv.airlock.bundle import RECORD_NAME, verify_bundle
from trenv.airlock.service import working_files
from trenv.cli.common import JsonOption, fail, ok, print_json, print_table, session_scope
from trenv.registry.projects import get_project
from trenv.store.models import ExportRequest

airlock_app = typer.Typer(help="Export requests and released bundles.", no_args_is_help=True)


@airlock_app.command("list")
def airlock_list(
    project: str | None = typer.Option(None, help="Only this project's requests."),
    as_json: bool = JsonOption,
) -> None:
    """Export requests, newest first, with their state and round."""
    with session_scope() as session:
        query = session.query(ExportRequest).order_by(ExportRequest.id.desc())
        if project:
            query = query.filter(ExportRequest.project_id == get_project(session, project).id)
        rows = [
            {
                "id": r.id,
                "project": r.project.slug,
                "requester": r.requester,
                "title": r.title,
                "state": r.state.value,
                "round": r.round,
                "files": len(working_files(r)),
            }
            for r in query
        ]
    if as_json:
        print_json(rows)
        return
    print_table(
        "Export requests",
        ["id", "project", "requester", "title", "state", "round", "files"],
        [[str(v) for v in row.values()] for row in rows],
    )


@airlock_app.command("verify")
def airlock_verify(
    bundle: Path = typer.Argument(..., help="A released trenv bundle (.zip)."),
) -> None:
    """Check that every file in a bundle is byte-identical to what its record says was
    reviewed; exit 1 naming each difference."""
    try:
        data = bundle.read_bytes()
        problems = verify_bundle(data)
        with zipfile.ZipFile(bundle) as zf:
            request = json.loads(zf.read(RECORD_NAME)).get("request", {})
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as err:
        fail(f"{bundle} is not a readable trenv bundle ({err}); check the path and the file.")
    if problems:
        for problem in problems:
            typer.echo(f"MISMATCH {problem}", err=True)
        raise typer.Exit(1)
    ok(
        f"{bundle.name}: every file matches the disclosure record of request "
        f"{request.get('id')} ({request.get('project')}, policy {request.get('policy')})"
    )
