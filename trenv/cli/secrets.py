"""`trenv secrets rotate`: a new key for the secrets kept in the database."""

from __future__ import annotations

import os

import typer

from trenv import audit
from trenv.audit_actions import AuditAction
from trenv.cli.common import ok, session_scope, state
from trenv.store import secrets

secrets_app = typer.Typer(
    help="The key that encrypts secrets in the database (docs/operations.md).",
    no_args_is_help=True,
)


@secrets_app.command("rotate")
def rotate() -> None:
    """Put a new key first, re-encrypt every secret with it, then retire the old keys."""
    settings = state.settings
    with session_scope() as session:
        count = secrets.rotate(session, settings)
        audit.record(
            session,
            actor=state.acting(),
            action=AuditAction.system_secrets_rotate,
            object_type="system",
            object_id="secrets",
            detail={"secrets": count},
        )
    # Only after the re-encrypted secrets are committed: until then both keys are in the file.
    secrets.drop_old_keys(settings)
    if os.environ.get(secrets.ENV_KEYS, "").strip():
        ok(f"{count} secrets re-encrypted under the first key in {secrets.ENV_KEYS}; remove "
           "the old keys from it and restart the services")  # fmt: skip
    else:
        ok(f"{count} secrets re-encrypted under a new key; the old key is retired")
