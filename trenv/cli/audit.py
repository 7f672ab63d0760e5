"""`trenv audit`: verify the hash chain (against the anchor file and outside witnesses),
show its tail, and export a signed anchor to keep off this host."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import typer

from trenv import audit, signing
from trenv.airlock.bundle import check_bundle
from trenv.audit_actions import AuditAction
from trenv.cli.common import (
    JsonOption,
    err_console,
    fail,
    ok,
    print_json,
    print_table,
    session_scope,
    state,
)
from trenv.cli.serialise import audit_dict

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
anchor_app = typer.Typer(help="Signed anchors: the chain's head, kept off this host.")
audit_app.add_typer(anchor_app, name="anchor")


@dataclass(frozen=True)
class _Trust:
    """This installation's current key and the retired ones it still accepts witnesses of."""

    current: str
    retired: dict[str, signing.RetiredKey]

    @property
    def fingerprints(self) -> set[str]:
        return {self.current, *self.retired}

    def noted(self, source: str, fingerprint: str) -> str:
        """``source``, naming the retired key when one signed it."""
        retired = self.retired.get(fingerprint)
        return source if retired is None else f"{source} (signed by {retired.describe()})"


def _own_trust() -> _Trust:
    try:
        identity, retired = signing.installation_trust(state.settings)
    except signing.SigningKeyError as error:
        fail(str(error))
    if identity is None:
        fail(
            "this installation has no signing key yet, so no witness can be checked: "
            "run `trenv init`."
        )
    return _Trust(identity.fingerprint, retired)


def _bundle_witness(path: Path, data: bytes, trust: _Trust) -> audit.Witness:
    checked = check_bundle(data, trust.fingerprints)
    if not checked.ok:
        fail(f"{path} cannot witness the audit log: " + "; ".join(checked.problems))
    assert checked.record is not None
    head = checked.record.get("audit_head")
    if not (
        isinstance(head, dict)
        and isinstance(head.get("event_id"), int)
        and isinstance(head.get("hash"), str)
    ):
        fail(f"{path} carries no audit chain head (released before trenv recorded it).")
    request = checked.record.get("request") or {}
    assert checked.signer is not None
    return audit.Witness(
        head["event_id"],
        head["hash"],
        trust.noted(
            f"the release bundle {path.name} (request {request.get('id')})",
            checked.signer.fingerprint,
        ),
    )


def _anchor_signer(data: bytes) -> str:
    """The fingerprint of the key that signed an anchor :func:`audit.read_anchor_export`
    accepted."""
    return signing.PublicIdentity.from_record(json.loads(data)["anchor"]["signer"]).fingerprint


def _witness(path: Path, trust: _Trust) -> audit.Witness:
    try:
        data = path.read_bytes()
    except OSError as error:
        fail(f"cannot read {path} ({error.strerror}); check the path.")
    if zipfile.is_zipfile(path):
        try:
            return _bundle_witness(path, data, trust)
        except (zipfile.BadZipFile, EOFError, zlib.error) as error:
            fail(f"{path} is not a readable trenv bundle ({error}).")
    try:
        witness = audit.read_anchor_export(data, trust.fingerprints, f"the anchor {path.name}")
    except audit.AnchorError as error:
        fail(f"refused: {error}.")
    return dataclasses.replace(witness, source=trust.noted(witness.source, _anchor_signer(data)))


@audit_app.command("verify")
def audit_verify(
    against: list[Path] = typer.Option(
        [],
        "--against",
        help="A release bundle (.zip) or an exported anchor (`trenv audit anchor export`) "
        "kept outside: the log must still hold the head it witnessed. Repeatable.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Recompute the hash chain; compare it with the anchor file and any witnesses.

    Exit 1 naming the first bad event; 2 when a witness is unreadable, forged or foreign."""
    witnesses: list[audit.Witness] = []
    if against:
        trust = _own_trust()
        witnesses = [_witness(path, trust) for path in against]
    with session_scope() as session:
        result = audit.verify(session, state.settings.audit_anchor, witnesses)
    if as_json:
        print_json(result.__dict__)
    elif result.ok:
        also = "".join(
            f"; event {w.event_id} matches {w.source}" for w in sorted(witnesses, key=_by_id)
        )
        ok(f"audit chain intact: {result.checked} events verified{also}")
    else:
        err_console.print(f"[bold red]Audit chain broken:[/] {result.problem}", highlight=False)
    if not result.ok:
        raise typer.Exit(1)


def _by_id(witness: audit.Witness) -> int:
    return witness.event_id


@audit_app.command("tail")
def audit_tail(
    count: int = typer.Option(20, "-n", "--count", min=1), as_json: bool = JsonOption
) -> None:
    """Show the newest audit events."""
    with session_scope() as session:
        rows = [audit_dict(e) for e in audit.tail(session, count)]
    if as_json:
        print_json(rows)
        return
    print_table(
        "Audit log",
        ["#", "time (UTC)", "actor", "action", "object", "detail"],
        [
            [r["id"], r["occurred_at"][:19], r["actor"], r["action"], r["object"], r["detail"]]
            for r in rows
        ],
        keep_whole=("action",),
    )


@anchor_app.command("export")
def anchor_export(
    path: Path = typer.Argument(..., help="Where to write the signed anchor (JSON)."),
) -> None:
    """Write the chain's head, signed with this installation's key, to a new file PATH.

    Run it daily and copy the file off this host (write-once storage): `trenv audit verify
    --against PATH` then detects a rewritten history."""
    if path.exists():
        fail(f"{path} exists; anchors are never overwritten: choose a new name.")
    settings = state.settings
    try:
        key = signing.load_signing_key(settings)
    except signing.SigningKeyError as error:
        fail(str(error))
    exported_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with session_scope() as session:
        # The export is itself an event, and the head the anchor witnesses.
        event = audit.record(
            session,
            actor=state.acting(),
            action=AuditAction.audit_anchor_export,
            object_type="audit",
            object_id="anchor",
            detail={"path": str(path.absolute()), "signer": key.identity.fingerprint},
        )
        head = (event.id, event.hash)
    data = audit.export_anchor(key, head[0], head[1], exported_at)
    _write_new(path, data)
    ok(
        f"anchor of event {head[0]} signed by {key.identity.describe()} written to {path}; "
        "copy it off this host"
    )


def _write_new(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: never replace a file written meanwhile
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    except FileExistsError:
        fail(f"{path} appeared meanwhile; anchors are never overwritten: choose a new name.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
