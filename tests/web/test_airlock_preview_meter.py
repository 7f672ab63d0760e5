"""The airlock's previews count on the egress meter for everyone outside the review, so many
drafts or reloads meet the same hourly limit as notebook output (trenv.web.airlock.meter);
the checkers reviewing a request are not metered."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from tests.support.images import chart
from tests.web.airlock_world import Tx, World, auth, build_world
from trenv.config import Settings
from trenv.disclosure.policy import load_policy
from trenv.meter import ledger
from trenv.meter.levels import levels
from trenv.meter.wire import MeterKind
from trenv.store.models import AuditEvent

P = "/services/trenv/"
HTML = {"accept": "text/html"}
WITHHELD = "Previews are withheld for this hour"
ROWS = "\n".join(f"c{i:05d},theft,{2015 + i % 10},{17 + i}" for i in range(500))
CSV = ("case,offence,year,days\n" + ROWS + "\n").encode()


@pytest.fixture
def w(settings: Settings, tx: Tx, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from build_world(settings, tx, monkeypatch)


def used(w: World, user: str, kind: MeterKind) -> int:
    with w.tx() as session:
        return ledger.used(session, username=user, kind=kind, now=dt.datetime.now(dt.UTC))


def fill(w: World, user: str, kind: MeterKind, leave: int) -> None:
    """Use the user's hour up to ``leave`` bytes below the hard level (as kernels would)."""
    hard = levels(load_policy("trenv-default"), kind).hard
    with w.tx() as session:
        ledger.add_bytes(
            session, username=user, project="reoffending", kind=kind,
            nbytes=hard - used(w, user, kind) - leave, now=dt.datetime.now(dt.UTC),
        )  # fmt: skip


def page(w: World, request_id: int, token: str) -> str:
    reply = w.outside.get(f"{P}requests/{request_id}", headers={**HTML, **auth(token)})
    assert reply.status_code == 200, reply.text
    return reply.text


def draft(w: World) -> int:
    w.write("outputs/cases.csv", CSV)
    reply = w.create(files=[{"path": "outputs/cases.csv", "justification": "for the paper"}])
    assert reply.status_code == 201, reply.text
    return int(reply.json()["id"])


def test_every_view_of_a_preview_counts_on_the_requesters_meter(w: World) -> None:
    rid = draft(w)
    assert used(w, "rita", "text") == 0
    assert ">c00047<" in page(w, rid, "t-rita")
    first = used(w, "rita", "text")
    assert first > 48 * len("c00047,theft,2015,64")  # the rows shown, at least
    page(w, rid, "t-rita")
    assert used(w, "rita", "text") == 2 * first  # a reload is shown again, counted again


def test_past_the_hours_level_the_previews_are_withheld_and_nothing_counted(w: World) -> None:
    rid = draft(w)
    fill(w, "rita", "text", leave=100)  # the notebook's output used the hour
    before = used(w, "rita", "text")
    text = page(w, rid, "t-rita")
    assert ">c00000<" not in text and WITHHELD in text
    assert "limit is 2,048 KB per hour" in text and "UTC" in text
    assert used(w, "rita", "text") == before  # withheld: nothing counted
    # nora's hour is her own
    assert ">c00000<" in page(w, rid, "t-nora")


def test_crossing_the_warning_level_on_a_page_writes_the_audit_event(w: World) -> None:
    rid = draft(w)
    policy = load_policy("trenv-default")
    warn = levels(policy, "text").warn
    with w.tx() as session:
        ledger.add_bytes(
            session, username="rita", project="reoffending", kind="text",
            nbytes=warn - 10, now=dt.datetime.now(dt.UTC),
        )  # fmt: skip
    page(w, rid, "t-rita")
    with w.tx() as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.actor == "rita")).all()
    assert "egress.warn" in actions


def test_the_reviewing_checker_is_not_metered(w: World) -> None:
    req = w.submitted(("outputs/cases.csv", CSV))
    fill(w, "chris", "text", leave=0)  # even with the hour used up
    text = page(w, req["id"], "t-chris")
    assert ">c00299<" in text and WITHHELD not in text


def test_a_figure_preview_counts_as_image_and_stops_at_the_level(w: World) -> None:
    w.write("outputs/fig.png", chart("bar"))
    reply = w.create(files=[{"path": "outputs/fig.png", "justification": "the figure"}])
    assert reply.status_code == 201, reply.text
    rid = reply.json()["id"]
    fid = reply.json()["file_list"][0]["id"]
    url = f"{P}requests/{rid}/files/{fid}/preview.png"
    shown = w.outside.get(url, headers=auth("t-rita"))
    assert shown.status_code == 200
    assert used(w, "rita", "image") == len(shown.content)
    fill(w, "rita", "image", leave=10)
    refused = w.outside.get(url, headers=auth("t-rita"))
    assert refused.status_code == 429, refused.text
    assert "withheld for this hour" in refused.text and refused.content[:4] != b"\x89PNG"
