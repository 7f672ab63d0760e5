"""`trenv user ...` and `trenv org ...`."""

from __future__ import annotations

import sys

import typer

from trenv.cli.common import JsonOption, ok, print_json, print_table, session_scope, state
from trenv.cli.serialise import organisation_dict, user_dict
from trenv.registry import credentials, organisations, users

user_app = typer.Typer(help="People and their global roles.", no_args_is_help=True)
org_app = typer.Typer(help="Data suppliers and their data controllers.", no_args_is_help=True)


@user_app.command("add")
def user_add(
    username: str = typer.Argument(..., help="Login name (lowercase)."),
    role: list[str] = typer.Option([], "--role", help="admin, steward or checker; repeatable."),
    full_name: str = typer.Option("", "--full-name"),
    email: str = typer.Option("", "--email"),
) -> None:
    """Register a person."""
    with session_scope() as session:
        user = users.add_user(
            session,
            actor=state.acting(),
            username=username,
            full_name=full_name,
            email=email,
            roles=users.parse_roles(role),
        )
        roles = ", ".join(sorted(r.value for r in user.roles)) or "no global role"
    ok(f"user {username} added ({roles})")


@user_app.command("list")
def user_list(as_json: bool = JsonOption) -> None:
    """List people."""
    with session_scope() as session:
        rows = [user_dict(u) for u in users.list_users(session)]
    if as_json:
        print_json(rows)
        return
    print_table(
        "Users",
        ["user", "name", "roles", "projects", "active"],
        [
            [
                r["username"],
                r["full_name"],
                ", ".join(r["roles"]),
                ", ".join(r["projects"]),
                "yes" if r["active"] else "no",
            ]
            for r in rows
        ],
    )


@user_app.command("show")
def user_show(username: str, as_json: bool = JsonOption) -> None:
    """Show one person."""
    with session_scope() as session:
        data = user_dict(users.get_user(session, username))
    if as_json:
        print_json(data)
        return
    print_table(f"User {username}", ["field", "value"], [[k, v] for k, v in data.items()])


@user_app.command("set-password")
def user_set_password(
    username: str,
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input (scripts)."
    ),
) -> None:
    """Set a person's login password (prompted, never echoed)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    with session_scope() as session:
        credentials.set_password(
            session, actor=state.acting(), username=username, password=password
        )
    ok(f"password set for {username}")


@user_app.command("reset-mfa")
def user_reset_mfa(username: str, as_json: bool = JsonOption) -> None:
    """Issue a new TOTP second factor; the old one stops working. Shown once."""
    with session_scope() as session:
        secret = credentials.enrol_totp(session, actor=state.acting(), username=username)
    uri = credentials.provisioning_uri(username, secret)
    if as_json:
        print_json({"username": username, "totp_secret": secret, "otpauth_uri": uri})
        return
    ok(f"new second factor for {username}; give it to them over a trusted channel:")
    typer.echo(f"  secret: {secret}\n  uri:    {uri}")


@org_app.command("add")
def org_add(
    slug: str = typer.Argument(..., help="Short name, e.g. 'om' or 'nfi'."),
    name: str = typer.Option("", "--name", help="Full name of the organisation."),
) -> None:
    """Register a data-supplying organisation."""
    with session_scope() as session:
        organisations.add_organisation(session, actor=state.acting(), slug=slug, name=name)
    ok(f"organisation {slug} added")


@org_app.command("add-controller")
def org_add_controller(slug: str, username: str) -> None:
    """Name a user as data controller: they approve grants of this supplier's data."""
    with session_scope() as session:
        organisations.add_controller(session, actor=state.acting(), slug=slug, username=username)
    ok(f"{username} is a data controller of {slug}")


@org_app.command("list")
def org_list(as_json: bool = JsonOption) -> None:
    """List organisations."""
    with session_scope() as session:
        rows = [organisation_dict(o) for o in organisations.list_organisations(session)]
    if as_json:
        print_json(rows)
        return
    print_table(
        "Organisations",
        ["slug", "name", "data controllers"],
        [[r["slug"], r["name"], ", ".join(r["controllers"])] for r in rows],
    )


def _set_active(username: str, active: bool) -> None:
    from trenv.admin import people
    from trenv.admin.servers import servers_for_operator

    settings = state.settings
    with session_scope() as session:
        outcome = people.set_active(
            session, actor=state.acting(), username=username, active=active,
            servers=servers_for_operator(settings),
        )  # fmt: skip
    if active:
        ok(f"{username} is active again")
    else:
        ok(f"{username} is deactivated; their server: {outcome}")


@user_app.command("deactivate")
def user_deactivate(username: str) -> None:
    """Stop a person's access: no login, no server start; a running server is stopped."""
    _set_active(username, False)


@user_app.command("activate")
def user_activate(username: str) -> None:
    """Give a deactivated person their access back."""
    _set_active(username, True)
