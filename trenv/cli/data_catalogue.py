"""`trenv dataset ...`, `trenv grant ...` and `trenv image ...`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml

from trenv.cli.common import (
    JsonOption,
    ok,
    print_json,
    print_table,
    session_scope,
    state,
    user_errors,
)
from trenv.cli.serialise import dataset_dict, grant_dict, image_dict
from trenv.errors import Invalid
from trenv.hashing import file_sha256
from trenv.registry import datasets, grants, images
from trenv.registry.grant_rules import parse_rules, rules_from_text
from trenv.registry.validation import parse_date

dataset_app = typer.Typer(help="The dataset catalogue.", no_args_is_help=True)
grant_app = typer.Typer(help="Grants of datasets to projects (four eyes).", no_args_is_help=True)
image_app = typer.Typer(help="Notebook images.", no_args_is_help=True)


def _read_codebook(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as error:
        raise Invalid(
            f"cannot read codebook {path}: {error}", "Give a YAML or JSON file."
        ) from None
    if not isinstance(loaded, dict):
        raise Invalid(f"codebook {path} is not a mapping.", "Its top level must be key: value.")
    return loaded


def _existing_file(path: Path) -> Path:
    if not path.is_file():
        raise Invalid(f"no file at {path}.", "Check the path.")
    return path


@dataset_app.command("register")
def dataset_register(
    name: str = typer.Argument(..., help="Dataset name, e.g. 'convictions'."),
    supplier: str = typer.Option(..., "--supplier", help="Organisation slug."),
    version: str = typer.Option(..., "--version"),
    file: Path = typer.Option(..., "--file", help="The vault's Parquet (or CSV) file."),
    classification: str = typer.Option("special-category", "--classification"),
    description: str = typer.Option("", "--description"),
    codebook: Path | None = typer.Option(None, "--codebook", help="YAML/JSON codebook."),
) -> None:
    """Register a dataset version held in the vault (sha256 and rows read from the file)."""
    with user_errors():
        path = _existing_file(file).resolve()
        book = _read_codebook(codebook)
        level = datasets.parse_classification(classification)
        rows, digest = datasets.file_row_count(path), file_sha256(path)
    with session_scope() as session:
        datasets.register_dataset(
            session,
            actor=state.acting(),
            supplier=supplier,
            name=name,
            version=version,
            classification=level,
            row_count=rows,
            sha256=digest,
            path=str(path),
            description=description,
            codebook=book,
        )
    ok(f"dataset {name}@{version} registered ({rows} rows, sha256 {digest[:12]}…)")


@dataset_app.command("list")
def dataset_list(as_json: bool = JsonOption) -> None:
    """List dataset versions."""
    with session_scope() as session:
        rows = [dataset_dict(d) for d in datasets.list_datasets(session)]
    if as_json:
        print_json(rows)
        return
    print_table(
        "Datasets",
        ["dataset", "supplier", "classification", "rows", "sha256", "status"],
        [
            [
                f"{r['name']}@{r['version']}",
                r["supplier"],
                r["classification"],
                r["rows"],
                r["sha256"][:12],
                r["status"],
            ]
            for r in rows
        ],
    )


@dataset_app.command("show")
def dataset_show(
    reference: str = typer.Argument(..., help="NAME or NAME@VERSION"), as_json: bool = JsonOption
) -> None:
    """Show a dataset version with its codebook."""
    with session_scope() as session:
        data = dataset_dict(datasets.get_dataset(session, reference))
    if as_json:
        print_json(data)
        return
    print_table(f"Dataset {reference}", ["field", "value"], [[k, v] for k, v in data.items()])


@grant_app.command("add")
def grant_add(
    project: str,
    dataset: str = typer.Argument(..., help="NAME or NAME@VERSION"),
    columns: str | None = typer.Option(None, "--columns", help="Comma-separated subset."),
    expires: str | None = typer.Option(None, "--expires", help="YYYY-MM-DD"),
    drop: str | None = typer.Option(
        None, "--drop", help="Comma-separated columns the project does not see."
    ),
    coarsen: list[str] | None = typer.Option(
        None,
        "--coarsen",
        help="COLUMN=month|year (a date) or COLUMN=bands:E1,E2,... (a number); repeatable.",
    ),
) -> None:
    """Propose a grant (as a steward); it takes effect once the data controller approves."""
    proposer = state.person()
    with session_scope() as session:
        grant = grants.propose_grant(
            session,
            proposer=proposer,
            project=project,
            dataset=dataset,
            columns=[c.strip() for c in columns.split(",")] if columns is not None else None,
            expires_on=parse_date(expires, "expiry date") if expires else None,
            rules=rules_from_text(drop, coarsen),
        )
        grant_id = grant.id
    ok(f"grant #{grant_id} proposed; a data controller of the supplier must approve it")


@grant_app.command("approve")
def grant_approve(grant_id: int) -> None:
    """Approve a proposed grant (as the supplier's data controller)."""
    approver = state.person()
    with session_scope() as session:
        grants.approve_grant(session, approver=approver, grant_id=grant_id)
    ok(f"grant #{grant_id} is in effect")


@grant_app.command("revoke")
def grant_revoke(grant_id: int, reason: str = typer.Option("", "--reason")) -> None:
    """Revoke a grant at once."""
    actor = state.person()
    with session_scope() as session:
        grants.revoke_grant(session, actor=actor, grant_id=grant_id, reason=reason)
    ok(f"grant #{grant_id} revoked")


@grant_app.command("list")
def grant_list(
    project: str | None = typer.Option(None, "--project"), as_json: bool = JsonOption
) -> None:
    """List grants."""
    with session_scope() as session:
        rows = [grant_dict(g) for g in grants.list_grants(session, project=project)]
    if as_json:
        print_json(rows)
        return
    print_table(
        "Grants",
        [
            "#",
            "project",
            "dataset",
            "columns",
            "rules",
            "status",
            "proposed by",
            "approved by",
            "expires",
        ],
        [
            [
                r["id"],
                r["project"],
                r["dataset"],
                ", ".join(r["columns"] or ["all"]),
                parse_rules(r["column_rules"]).describe() or "none",
                r["status"],
                r["proposed_by"],
                r["approved_by"],
                r["expires_on"],
            ]
            for r in rows
        ],
    )


@image_app.command("list")
def image_list(as_json: bool = JsonOption) -> None:
    """List recorded images."""
    with session_scope() as session:
        rows = [image_dict(i) for i in images.list_images(session)]
    if as_json:
        print_json(rows)
        return
    print_table(
        "Images",
        ["image", "digest", "approved", "approved by"],
        [
            [
                r["reference"],
                r["digest"][:19],
                "retired" if r["retired"] else ("yes" if r["approved"] else "no"),
                r["approved_by"],
            ]
            for r in rows
        ],
    )


@image_app.command("approve")
def image_approve(reference: str = typer.Argument(..., help="NAME:TAG")) -> None:
    """Mark an image usable by projects (admins only)."""
    approver = state.person()
    with session_scope() as session:
        images.approve_image(session, approver=approver, reference=reference)
    ok(f"image {reference} approved")


@image_app.command("retire")
def image_retire(
    reference: str = typer.Argument(..., help="NAME:TAG"),
    reason: str = typer.Option("", "--reason"),
) -> None:
    """Take an image out of use (admins only); projects on it must move to another image."""
    actor = state.person()
    with session_scope() as session:
        image = images.retire_image(session, actor=actor, reference=reference, reason=reason)
        moving = [p.slug for p in images.projects_on_image(session, image)]
    ok(f"image {reference} retired" + (f"; must move: {', '.join(moving)}" if moving else ""))
