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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

import typer

from trenv import signing
from trenv.airlock.bundle import check_bundle
from trenv.cli.common import JsonOption, fail, ok, print_json, print_table, session_scope, state

if TYPE_CHECKING:  # imported in the commands: `verify` must start without the database
    from sqlalchemy.orm import Session

    from trenv.airlock.tau_argus import Loaded, TauArgusRefused

T = TypeVar("T")

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


@airlock_app.command("tau-argus")
def airlock_tau_argus(
    request_id: int = typer.Argument(..., help="The export request's id."),
    file_path: str = typer.Argument(..., help="The table's path in the request."),
    outdir: Path = typer.Argument(..., help="Folder to write the tau-ARGUS files into."),
    method: str = typer.Option("MOD", help="tau-ARGUS's secondary suppression: MOD, GH or OPT."),
    interactive: bool = typer.Option(
        False, "--interactive", help="End the batch in tau-ARGUS's window (<GOINTERACTIVE>)."
    ),
) -> None:
    """Write a request's saved table and its policy's rules as tau-ARGUS 4.2 batch input.

    For a checker reviewing the request (--as USER). The files hold the table's true values:
    they are written owner-only and never overwritten; the action is audited."""
    from trenv.airlock import tau_argus

    if method not in ("MOD", "GH", "OPT"):
        fail(f"--method {method!r}: use MOD, GH or OPT.")
    written = _as_checker(
        request_id,
        file_path,
        lambda session, loaded: tau_argus.write_request_batch(
            session,
            loaded,
            outdir,
            method=method,
            interactive=interactive,  # type: ignore[arg-type]
        ),
    )
    for path in written.values():
        typer.echo(str(path))
    name = next(n for n in written if n.endswith("-audit.arb")).removesuffix("-audit.arb")
    ok(
        f"tau-ARGUS input for {file_path} of request {request_id} in {outdir}: run {name}.arb "
        f"and {name}-audit.arb in tau-ARGUS, then `trenv airlock tau-argus-compare` on each "
        "written -safe.csv (README.txt says more). The files hold unsuppressed values."
    )


def _as_checker(request_id: int, file_path: str, work: Callable[[Session, Loaded], T]) -> T:
    """``work`` on the request's saved table for the checker (--as USER), or a refusal
    that is audited and ends the command."""
    from trenv.airlock import tau_argus

    user = state.person()
    refused: tau_argus.TauArgusRefused | None = None
    with session_scope() as session:
        try:
            loaded = tau_argus.load_for_checker(
                session, state.settings, request_id, file_path, user
            )
        except tau_argus.TauArgusRefused as error:
            refused = error
        else:
            return work(session, loaded)
    assert refused is not None
    _refuse(user, refused)


def _refuse(user: str, refused: TauArgusRefused) -> NoReturn:
    """Audit a refused read (in a transaction of its own: the refused one wrote nothing)."""
    from trenv.airlock import tau_argus

    with session_scope() as session:
        tau_argus.audit_refusal(session, user, refused)
    fail(str(refused))


@airlock_app.command("tau-argus-compare")
def airlock_tau_argus_compare(
    request_id: int = typer.Argument(..., help="The export request's id."),
    file_path: str = typer.Argument(..., help="The table's path in the request."),
    tau_output: Path = typer.Argument(..., help="The table tau-ARGUS wrote (-safe.csv)."),
    as_json: bool = JsonOption,
) -> None:
    """Compare tau-ARGUS's protected table with trenv's suppression pattern for the file.

    For a checker reviewing the request (--as USER); audited."""
    from trenv.airlock import tau_argus

    comparison = _as_checker(
        request_id,
        file_path,
        lambda session, loaded: tau_argus.compare_request(session, loaded, tau_output),
    )
    if as_json:
        print_json(comparison.as_dict())
        return
    typer.echo(comparison.summary)
    if comparison.cells:
        print_table(
            f"Suppressed cells of {file_path}",
            ["row", "column", "trenv", "tau-ARGUS", "note"],
            [
                [
                    " / ".join(c.row),
                    " / ".join(c.column),
                    c.trenv or "published",
                    f"{c.tau_status} {tau_argus_status(c.tau_status)}",
                    c.note,
                ]
                for c in comparison.cells
            ],
        )


def tau_argus_status(status: int) -> str:
    """tau-ARGUS's name of a cell status number."""
    from trenv.disclosure.tauargus import STATUSES

    return STATUSES[status]
