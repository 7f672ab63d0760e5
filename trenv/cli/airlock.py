"""`trenv airlock`: the export queue and the verification of released bundles.

Reviewing happens in the web pages (where the previews are); the CLI lists requests for
automation and lets anyone who received a bundle check it against its signed disclosure
record. `verify` imports no database, dataframe or plotting code: it starts in well under a
second (the module-level imports here stay light; `list` imports what it needs itself).
"""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

import typer

from trenv import signing
from trenv.airlock.bundle import check_bundle
from trenv.cli.common import JsonOption, fail, ok, print_json, print_table, session_scope, state

airlock_app = typer.Typer(help="Export requests and released bundles.", no_args_is_help=True)


@airlock_app.command("list")
def airlock_list(
    project: str | None = typer.Option(None, help="Only this project's requests."),
    as_json: bool = JsonOption,
) -> None:
    """Export requests, newest first, with their state and round."""
    from trenv.airlock.queries import working_files
    from trenv.registry.projects import get_project
    from trenv.store.models import ExportRequest

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


def _trusted(keys: list[str]) -> tuple[set[str], str, dict[str, signing.RetiredKey]]:
    """The fingerprints to trust, where they came from (--key, else this installation) and,
    for this installation, its retired keys (which are trusted too)."""
    if keys:
        try:
            return {signing.trusted_fingerprint(k) for k in keys}, "--key", {}
        except (ValueError, OSError) as error:
            fail(str(error))
    try:
        own, retired = signing.installation_trust(state.settings)
    except signing.SigningKeyError as error:
        fail(str(error))
    if own is None:
        fail(
            "no trusted key: pass --key with the public key or fingerprint that the "
            "installation publishes on its trenv pages (or run this on that installation)."
        )
    whence = f"this installation ({own.installation!r})"
    if retired:
        whence += f" and its {len(retired)} retired key(s)"
    return {own.fingerprint, *retired}, whence, retired


@airlock_app.command("verify")
def airlock_verify(
    bundle: Path = typer.Argument(..., help="A released trenv bundle (.zip)."),
    key: list[str] = typer.Option(
        [],
        "--key",
        help="The signing installation's public key (base64), its fingerprint (sha256:...) "
        "or a file holding either, as published on its trenv pages. Repeatable. Default: "
        "this installation's own key.",
    ),
) -> None:
    """Check a bundle's signature and that every file is the one the checkers reviewed.

    The disclosure record must be signed by the trusted installation's key, and every file
    in the bundle byte-identical to what the record lists; exit 1 naming each difference."""
    try:
        data = bundle.read_bytes()
        if not zipfile.is_zipfile(io.BytesIO(data)):
            raise zipfile.BadZipFile("not a zip file")
        trusted, whence, retired = _trusted(key)
        result = check_bundle(data, trusted)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, zlib.error) as err:
        fail(f"{bundle} is not a readable trenv bundle ({err}); check the path and the file.")
    if result.record is None:
        fail(f"{bundle} is not a readable trenv bundle ({result.problems[0]}).")
    if not result.ok:
        for kind, problem in result.found:
            typer.echo(f"{kind.upper()} {problem}", err=True)
        typer.echo(f"{bundle.name}: NOT verified (trusted key from {whence}).", err=True)
        raise typer.Exit(1)
    assert result.signer is not None
    request = result.record.get("request", {})
    was_retired = retired.get(result.signer.fingerprint)
    signer = result.signer.describe() + (
        f", {was_retired.describe()}" if was_retired is not None else ""
    )
    ok(
        f"{bundle.name}: signed by {signer}; every file matches the "
        f"disclosure record of request {request.get('id')} ({request.get('project')}, "
        f"policy {request.get('policy')})"
    )
