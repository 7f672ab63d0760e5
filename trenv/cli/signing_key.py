"""`trenv signing`: the installation's signing key (docs/operations.md, "Signing key and
audit anchors"): show it with its retired predecessors, and rotate it."""

from __future__ import annotations

import typer

from trenv import audit, signing
from trenv.audit_actions import AuditAction
from trenv.cli.common import JsonOption, fail, ok, print_json, print_table, session_scope, state

signing_app = typer.Typer(
    help="The key that signs releases and audit anchors (docs/operations.md).",
    no_args_is_help=True,
)


@signing_app.command("show")
def show(as_json: bool = JsonOption) -> None:
    """The current public key and the retired ones this installation still accepts."""
    try:
        current, retired = signing.installation_trust(state.settings)
    except signing.SigningKeyError as error:
        fail(str(error))
    if current is None:
        fail("this installation has no signing key yet: run `trenv init`.")
    if as_json:
        print_json(current.as_record() | {"retired": [r.as_record() for r in retired.values()]})
        return
    rows = [[current.fingerprint, "current", ""]]
    rows += [[r.fingerprint, "retired", r.retired_at] for r in retired.values()]
    print_table(
        f"Signing keys of {current.installation!r}",
        ["fingerprint", "state", "retired at (UTC)"],
        rows,
        keep_whole=("fingerprint",),
    )


@signing_app.command("rotate")
def rotate() -> None:
    """Make a new signing key; keep the old PUBLIC key as retired; destroy the old private key.

    Releases and anchors are signed with the new key from now on; bundles and anchors signed
    before stay verifiable here (`airlock verify`, `audit verify --against`) as signed by a
    retired key. Recipients outside need the new fingerprint: publish it."""
    settings = state.settings
    with session_scope() as session:
        try:
            retired, new = signing.rotate_signing_key(settings)
        except (signing.SigningKeyError, OSError) as error:
            fail(str(error))
        audit.record(
            session,
            actor=state.acting(),
            action=AuditAction.system_signing_key_rotate,
            object_type="system",
            object_id="signing",
            detail={
                "installation": new.identity.installation,
                "old_fingerprint": retired.fingerprint,
                "new_fingerprint": new.identity.fingerprint,
            },
        )
    ok(
        f"new signing key {new.identity.fingerprint} for {new.identity.installation!r}; the "
        f"old key {retired.fingerprint} is retired (its private key destroyed). Publish the "
        "new fingerprint where recipients find it."
    )
