"""`trenv budget set|show`: differential-privacy budgets per project and dataset."""

from __future__ import annotations

import typer

from trenv.cli.common import JsonOption, ok, print_json, print_table, session_scope, state
from trenv.privacy import ledger

budget_app = typer.Typer(help="Differential-privacy budgets (zCDP rho).", no_args_is_help=True)


@budget_app.command("set")
def budget_set(
    project: str,
    dataset: str = typer.Argument(..., help="Dataset name (all its versions share the budget)."),
    rho: float = typer.Option(..., "--rho", help="Total zCDP budget, e.g. 1.0."),
) -> None:
    """Set (or raise) a project's privacy budget on a dataset."""
    with session_scope() as session:
        status = ledger.set_budget(
            session, actor=state.acting(), project=project, dataset=dataset, rho_total=rho
        )
        remaining = status.to_dict()["rho_remaining"]
    ok(f"{project} may spend rho {rho} on {dataset} ({remaining} left)")


@budget_app.command("show")
def budget_show(project: str, as_json: bool = JsonOption) -> None:
    """Show a project's budgets: total, spent (including running queries) and left."""
    with session_scope() as session:
        rows = [s.to_dict() for s in ledger.statuses(session, project=project)]
    if as_json:
        print_json(rows)
        return
    print_table(
        f"Privacy budgets of {project}",
        ["dataset", "rho total", "spent", "left"],
        [[r["dataset"], r["rho_total"], r["rho_spent"], r["rho_remaining"]] for r in rows],
    )
