"""The audit vocabulary holds: every action the code writes is an AuditAction, every member is
written somewhere, every airlock move and DP spend state has its action, and record()
refuses anything else without writing. Old rows with other actions still verify."""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import trenv
from trenv import audit
from trenv.airlock.states import TRANSITIONS, Move
from trenv.audit_actions import DESCRIPTIONS, AuditAction
from trenv.config import Settings
from trenv.store.models import AuditEvent, SpendState

Tx = Callable[[], AbstractContextManager[Session]]
PACKAGE = Path(trenv.__file__).parent
VOCABULARY = PACKAGE / "audit_actions.py"

# The actions built with an f-string, by their constant prefix: the values each can take.
# A new f-string action elsewhere fails test_every_f_string_action_is_a_known_family.
FAMILIES: dict[str, set[str]] = {
    # trenv.airlock.service.move_request: AuditAction(f"airlock.request.{move.value}")
    "airlock.request.": {m.value for m in Move},
    # trenv.privacy.ledger._move: AuditAction(f"privacy.{to.value}"); a reservation is
    # AuditAction.privacy_reserve.
    "privacy.": {s.value for s in SpendState if s is not SpendState.reserved},
}


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if path != VOCABULARY:
            yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _record_calls(tree: ast.Module) -> Iterator[ast.expr]:
    """The ``action=`` argument of every ``audit.record(...)`` / ``record(...)`` call."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        called = node.func
        name = called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", "")
        owner = called.value if isinstance(called, ast.Attribute) else None
        on_audit = owner is None or _names(owner, "audit")
        if name == "record" and on_audit:
            for keyword in node.keywords:
                if keyword.arg == "action":
                    yield _unwrapped(keyword.value)


def _unwrapped(action: ast.expr) -> ast.expr:
    """``AuditAction(f"airlock.request.{move.value}")`` is checked as its f-string."""
    if isinstance(action, ast.Call) and _names(action.func, "AuditAction") and action.args:
        return action.args[0]
    return action


def _names(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _f_string_prefix(node: ast.JoinedStr) -> str:
    first = node.values[0] if node.values else None
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else ""


def _written() -> tuple[set[str], list[str]]:
    """Every action the code can write (string constants anywhere, AuditAction members named,
    f-string families expanded) and the f-string actions of no known family."""
    found: set[str] = set()
    unknown: list[str] = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
            elif isinstance(node, ast.Attribute) and _names(node.value, "AuditAction"):
                member = AuditAction.__members__.get(node.attr)  # None: .description etc.
                found.add(member.value if member else "")
        for action in _record_calls(tree):
            if isinstance(action, ast.JoinedStr):
                prefix = _f_string_prefix(action)
                if prefix in FAMILIES:
                    found |= {prefix + value for value in FAMILIES[prefix]}
                else:
                    unknown.append(f"{path.relative_to(PACKAGE.parent)}: {ast.unparse(action)}")
    return found, unknown


def test_every_f_string_action_is_a_known_family() -> None:
    _, unknown = _written()
    assert unknown == [], f"add these to FAMILIES and their values to AuditAction: {unknown}"


def test_every_member_is_written_somewhere_in_the_code() -> None:
    found, _ = _written()
    unused = sorted(a.value for a in AuditAction if a.value not in found)
    assert unused == [], f"no code writes {unused}: remove them or write them"


def test_every_literal_action_passed_to_record_is_a_member() -> None:
    members = {a.value for a in AuditAction}
    strays = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.value!r}"
        for path, tree in _modules()
        for action in _record_calls(tree)
        for node in ast.walk(action)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if not isinstance(action, ast.JoinedStr) and node.value not in members
    ]
    assert strays == []


def test_every_airlock_move_and_transition_has_its_action() -> None:
    for move in Move:
        assert AuditAction(f"airlock.request.{move.value}")
    for _, move in TRANSITIONS:
        assert f"airlock.request.{move.value}" in set(AuditAction)


def test_every_spend_state_after_a_reservation_has_its_action() -> None:
    for value in FAMILIES["privacy."]:
        assert AuditAction(f"privacy.{value}")


def test_every_member_has_a_description_and_a_name_derived_from_its_value() -> None:
    assert set(DESCRIPTIONS) == set(AuditAction)
    for action in AuditAction:
        assert action.name == action.value.replace(".", "_")
        assert action.description.strip() and "\n" not in action.description


def _count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_record_refuses_an_unknown_action_and_writes_nothing(settings: Settings, tx: Tx) -> None:
    with tx() as session:
        audit.record(
            session, actor="a", action=AuditAction.user_add, object_type="user", object_id="r"
        )
    with tx() as session:  # the caller's transaction commits: still nothing of the refusal
        with pytest.raises(ValueError) as refused:
            audit.record(session, actor="a", action="user.ad", object_type="user", object_id=1)
        message = str(refused.value)
        assert "'user.ad' is not an audit action" in message and "add it to AuditAction" in message
    with tx() as session:
        assert _count(session) == 1
        assert audit.verify(session, settings.audit_anchor).ok


def test_record_stores_the_plain_string_of_a_member(tx: Tx) -> None:
    with tx() as session:
        row = audit.record(
            session, actor="a", action=AuditAction.grant_revoke, object_type="grant", object_id=7
        )
        assert type(row.action) is str and row.action == "grant.revoke"
    with tx() as session:
        assert [e.action for e in audit.events(session)] == ["grant.revoke"]
        assert audit.verify(session).ok


def test_rows_with_actions_outside_the_vocabulary_still_verify(tx: Tx) -> None:
    """Verification never consults the enum: a row written before an action was renamed or
    retired (here inserted directly, with its correct hash) keeps the chain valid."""
    fields: dict[str, Any] = {
        "id": 1,
        "occurred_at": dt.datetime(2025, 1, 1, tzinfo=dt.UTC).isoformat(),
        "actor": "operator:root",
        "action": "legacy.action",
        "object_type": "system",
        "object_id": "trenv",
        "detail": "{}",
        "prev_hash": audit.GENESIS_HASH,
    }
    with tx() as session:
        session.add(AuditEvent(**fields, hash=audit.event_hash(**fields)))
    with tx() as session:
        audit.record(session, actor="a", action="user.add", object_type="user", object_id="x")
    with tx() as session:
        result = audit.verify(session)
        assert result.ok and result.checked == 2
