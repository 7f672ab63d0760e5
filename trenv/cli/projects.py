"""`trenv project ...`."""

from __future__ import annotations

import typer

from trenv.cli.common import JsonOption, ok, print_json, print_table, session_scope, state
from trenv.cli.serialise import grant_dict, project_dict
from trenv.errors import Invalid
from trenv.registry import grants, projects
from trenv.registry.validation import parse_date
from trenv.store.models import MemberRole

project_app = typer.Typer(help="Research projects and their members.", no_args_is_help=True)


@project_app.command("create")
def project_create(
    slug: str = typer.Argument(..., help="Short name, e.g. 'reoffending-2026'."),
    title: str = typer.Option(..., "--title"),
    end_date: str = typer.Option(..., "--end-date", help="YYYY-MM-DD; access stops after it."),
    start_date: str | None = typer.Option(None, "--start-date", help="YYYY-MM-DD; default today."),
    purpose: str = typer.Option("", "--purpose"),
    legal_basis: str = typer.Option(
        "", "--legal-basis", help="e.g. 'WJSG art. 15 + DPIA 2026-04'."
    ),
    policy: str | None = typer.Option(None, "--policy", help="Disclosure policy profile."),
) -> None:
    """Create a project."""
    with session_scope() as session:
        projects.create_project(
            session,
            actor=state.acting(),
            slug=slug,
            title=title,
            end_date=parse_date(end_date, "end date"),
            start_date=parse_date(start_date, "start date") if start_date else None,
            purpose=purpose,
            legal_basis=legal_basis,
            policy_profile=policy or state.settings.default_policy_profile,
        )
    ok(f"project {slug} created")


def _member_role(value: str) -> MemberRole:
    try:
        return MemberRole(value)
    except ValueError:
        raise Invalid(f"unknown member role {value!r}.", "Use researcher or lead.") from None


@project_app.command("add-member")
def project_add_member(
    slug: str,
    username: str,
    role: str = typer.Option("researcher", "--role", help="researcher or lead."),
) -> None:
    """Add a person to a project."""
    with session_scope() as session:
        projects.add_member(
            session, actor=state.acting(), slug=slug, username=username, role=_member_role(role)
        )
    ok(f"{username} is a {role} of {slug}")


@project_app.command("remove-member")
def project_remove_member(slug: str, username: str) -> None:
    """Remove a person from a project."""
    with session_scope() as session:
        projects.remove_member(session, actor=state.acting(), slug=slug, username=username)
    ok(f"{username} removed from {slug}")


@project_app.command("edit")
def project_edit(
    slug: str,
    title: str | None = typer.Option(None, "--title"),
    purpose: str | None = typer.Option(None, "--purpose"),
    legal_basis: str | None = typer.Option(None, "--legal-basis"),
    end_date: str | None = typer.Option(None, "--end-date", help="YYYY-MM-DD"),
    policy: str | None = typer.Option(None, "--policy", help="Disclosure policy profile."),
) -> None:
    """Change a project's title, purpose, legal basis, end date or policy profile."""
    with session_scope() as session:
        projects.update_project(
            session,
            actor=state.acting(),
            slug=slug,
            title=title,
            purpose=purpose,
            legal_basis=legal_basis,
            end_date=parse_date(end_date, "end date") if end_date else None,
            policy_profile=policy,
        )
    ok(f"project {slug} updated")


@project_app.command("set-image")
def project_set_image(slug: str, image: str = typer.Argument(..., help="NAME:TAG")) -> None:
    """Run the project's servers on an approved image."""
    with session_scope() as session:
        projects.set_image(session, actor=state.acting(), slug=slug, image_ref=image)
    ok(f"project {slug} uses {image}")


@project_app.command("list")
def project_list(as_json: bool = JsonOption) -> None:
    """List projects."""
    with session_scope() as session:
        rows = [project_dict(p) for p in projects.list_projects(session)]
    if as_json:
        print_json(rows)
        return
    print_table(
        "Projects",
        ["slug", "title", "ends", "state", "members", "policy"],
        [
            [
                r["slug"],
                r["title"],
                r["end_date"],
                "active" if r["active"] else f"inactive ({r['status']})",
                len(r["members"]),
                r["policy_profile"],
            ]
            for r in rows
        ],
    )


@project_app.command("show")
def project_show(slug: str, as_json: bool = JsonOption) -> None:
    """Show a project, its members and its grants."""
    with session_scope() as session:
        data = project_dict(projects.get_project(session, slug))
        data["grants"] = [grant_dict(g) for g in grants.list_grants(session, project=slug)]
    if as_json:
        print_json(data)
        return
    simple = {k: v for k, v in data.items() if k not in ("members", "grants")}
    print_table(f"Project {slug}", ["field", "value"], [[k, v] for k, v in simple.items()])
    print_table("Members", ["user", "role"], [[m["user"], m["role"]] for m in data["members"]])
    print_table(
        "Grants",
        ["#", "dataset", "columns", "status", "expires"],
        [
            [
                g["id"],
                g["dataset"],
                ", ".join(g["columns"] or ["all"]),
                g["status"],
                g["expires_on"],
            ]
            for g in data["grants"]
        ],
    )
