"""`trenv data ...` (ingest, linkage, publication) and `trenv project close`.

The rules and the bookkeeping live in trenv.vault.service; these commands parse options,
draw progress bars (on stderr, so --json output stays clean) and print results.
`trenv data synth` is demo code: it lives in trenv/cli/demo.py and joins this group
through ``GROUP_EXTRAS``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from trenv.cli.common import (
    JsonOption,
    err_console,
    ok,
    print_json,
    print_table,
    session_scope,
    state,
    user_errors,
)
from trenv.vault import service
from trenv.vault.progress import rich_progress
from trenv.vault.validate import ValidationReport

data_app = typer.Typer(
    help="The data vault: synthetic data, ingest, linkage and publication.", no_args_is_help=True
)


def _print_problems(report: ValidationReport) -> None:
    print_table(
        f"Problems in {report.path.name} (showing {len(report.problems)} of "
        f"{report.problem_count})",
        ["row", "column", "kind", "message"],
        [[p.row, p.column, p.kind, p.message] for p in report.problems],
    )


@data_app.command("ingest")
def data_ingest(
    file: Path = typer.Argument(..., help="The supplier's extract (CSV or Parquet)."),
    dataset: str = typer.Option(..., "--dataset", help="Catalogue name, e.g. 'cyber_reports'."),
    supplier: str = typer.Option(..., "--supplier", help="Organisation slug."),
    schema: str = typer.Option(
        ..., "--schema", help="Schema YAML file, or a built-in schema name such as 'persons'."
    ),
    version: str | None = typer.Option(None, "--version", help="Default: today (YYYY-MM-DD)."),
    classification: str = typer.Option("special-category", "--classification"),
    description: str | None = typer.Option(
        None, "--description", help="Default: the schema's description."
    ),
    max_problems: int = typer.Option(20, "--max-problems", min=1, help="Problems listed."),
    as_json: bool = JsonOption,
) -> None:
    """Validate an extract, store it in the vault and register the dataset version."""
    request = service.IngestRequest(
        file=file,
        dataset=dataset,
        supplier=supplier,
        schema=schema,
        version=version,
        classification=classification,
        description=description,
    )
    with user_errors():
        try:
            with rich_progress(err_console, enabled=not as_json) as hook:
                outcome = service.ingest_dataset(
                    session_scope,
                    state.settings,
                    request,
                    actor=state.acting(),
                    max_listed=max_problems,
                    progress=hook,
                )
        except service.IngestRefused as refused:
            _print_problems(refused.report)
            raise
    if as_json:
        print_json({**outcome.__dict__, "directory": str(outcome.directory)})
        return
    ok(
        f"dataset {outcome.reference} ingested: {outcome.rows} rows, "
        f"{len(outcome.columns)} columns ({', '.join(outcome.pseudonym_columns) or 'no'} "
        f"pseudonymised), sha256 {outcome.sha256[:12]}…"
    )


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.2%}"


@data_app.command("link")
def data_link(
    spine: str = typer.Option(..., "--spine", help="Population register: NAME or NAME@VERSION."),
    sources: list[str] = typer.Option(..., "--source", help="A dataset to link (repeatable)."),
    ground_truth: Path | None = typer.Option(
        None, "--ground-truth", help="Synthetic ground truth: report precision and recall."
    ),
    version: str | None = typer.Option(
        None, "--version", help="Version of the linked datasets; default '<version>-linked'."
    ),
    threshold: float = typer.Option(0.5, "--threshold", help="Minimum match probability."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = JsonOption,
) -> None:
    """Link datasets to the spine (BSN pseudonym, else Splink) and register linked versions."""
    request = service.LinkRequest(
        spine=spine,
        sources=sources,
        ground_truth=ground_truth,
        version=version,
        threshold=threshold,
        seed=seed,
    )
    with user_errors(), rich_progress(err_console, enabled=not as_json) as hook:
        outcome = service.link_datasets(
            session_scope, state.settings, request, actor=state.acting(), progress=hook
        )
    summary = service.link_summary(outcome.report)
    if as_json:
        print_json({"run": outcome.run, "registered": outcome.registered, "sources": summary})
        return
    print_table(
        f"Linkage run {outcome.run}",
        ["source", "method", "records", "matched", "match rate", "precision", "recall"],
        [
            [
                name,
                str(row["method"]).split(" (")[0],  # the full text is in the report
                row["records"],
                row["matched"],
                _percent(row["match_rate"]),
                _percent(row.get("precision")),
                _percent(row.get("recall")),
            ]
            for name, row in summary.items()
        ],
    )
    ok(
        "registered "
        + (", ".join(outcome.registered) or "no new dataset version")
        + f"; report in {outcome.directory / 'report.json'}"
    )


@data_app.command("publish")
def data_publish(
    project: str = typer.Option(..., "--project", help="Project slug."),
    as_json: bool = JsonOption,
) -> None:
    """Publish the project's read-only view: its granted datasets and columns only."""
    with session_scope() as session, rich_progress(err_console, enabled=not as_json) as hook:
        outcome = service.publish_project(
            session, state.settings, project, actor=state.acting(), progress=hook
        )
    if as_json:
        print_json({**outcome.__dict__, "data_dir": str(outcome.data_dir)})
        return
    if outcome.withdrawn:
        gone = f" ({', '.join(outcome.removed)} removed)" if outcome.removed else ""
        ok(f"project {project} has no effective grant: its view is withdrawn{gone}")
        return
    print_table(
        f"Published for {project}",
        ["dataset", "version", "rows", "columns", "sha256"],
        [
            [d["dataset"], d["version"], d["rows"], ", ".join(d["columns"]), d["sha256"][:12]]
            for d in outcome.datasets
        ],
    )
    gone = f"; removed {', '.join(outcome.removed)}" if outcome.removed else ""
    ok(f"view of {project} published at {outcome.data_dir}{gone}")


def project_close(slug: str = typer.Argument(..., help="Project slug.")) -> None:
    """Close a project: servers stopped, view withdrawn, key destroyed, workspaces archived."""
    from trenv.admin.closure import close_project
    from trenv.admin.servers import servers_for_operator

    settings = state.settings
    with user_errors():
        outcome = close_project(
            session_scope, settings, slug, actor=state.acting(),
            servers=servers_for_operator(settings),
        )  # fmt: skip
    ok(outcome.summary())
    if outcome.hub_problem:
        err_console.print(f"[bold yellow]Hub:[/] {outcome.hub_problem}", highlight=False)
