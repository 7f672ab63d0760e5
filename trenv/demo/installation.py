"""The demo installation's registry: people, suppliers and a project, created idempotently.

`make demo` runs `trenv demo seed`; running it again changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from trenv.errors import NotFound
from trenv.registry import credentials, images, organisations, projects, users
from trenv.store.models import GlobalRole, MemberRole

ACTOR = "system:demo"
PROJECT = "reoffending-demo"


@dataclass(frozen=True)
class DemoUser:
    username: str
    full_name: str
    roles: frozenset[GlobalRole]


DEMO_USERS = (
    DemoUser("rosa", "Rosa Researcher", frozenset()),
    DemoUser("chris", "Chris Checker", frozenset({GlobalRole.checker})),
    DemoUser("cleo", "Cleo Checker", frozenset({GlobalRole.checker})),
    DemoUser("adam", "Adam Admin", frozenset({GlobalRole.admin})),
    DemoUser("stella", "Stella Steward", frozenset({GlobalRole.steward})),
    DemoUser("carl", "Carl Controller (OM)", frozenset()),
)

# The justice chain's suppliers (slug, name, controller).
DEMO_SUPPLIERS = (
    ("om", "Openbaar Ministerie (prosecution service)", "carl"),
    ("rechtspraak", "De Rechtspraak (courts)", "carl"),
    ("dji", "Dienst Justitiële Inrichtingen (prisons)", "carl"),
    ("politie", "Politie (police)", "carl"),
    ("nfi", "Nederlands Forensisch Instituut", "carl"),
)


def seed(session: Session, today: dt.date | None = None) -> list[str]:
    """Create whatever of the demo registry is missing; return what was created."""
    created: list[str] = []
    for person in DEMO_USERS:
        try:
            users.get_user(session, person.username)
        except NotFound:
            users.add_user(
                session,
                actor=ACTOR,
                username=person.username,
                full_name=person.full_name,
                roles=person.roles,
            )
            created.append(f"user {person.username}")
    for slug, name, controller in DEMO_SUPPLIERS:
        try:
            org = organisations.get_organisation(session, slug)
        except NotFound:
            org = organisations.add_organisation(session, actor=ACTOR, slug=slug, name=name)
            created.append(f"organisation {slug}")
        if controller not in {u.username for u in org.controllers}:
            organisations.add_controller(session, actor=ACTOR, slug=slug, username=controller)
    try:
        projects.get_project(session, PROJECT)
    except NotFound:
        today = today or dt.date.today()
        projects.create_project(
            session,
            actor=ACTOR,
            slug=PROJECT,
            title="Two-year reoffending after a conviction (demo)",
            purpose="Trends in reoffending by offence type, age band and year, on synthetic data.",
            legal_basis="Demo installation: synthetic data only.",
            end_date=today.replace(year=today.year + 1),
            policy_profile="trenv-default",
        )
        projects.add_member(
            session, actor=ACTOR, slug=PROJECT, username="rosa", role=MemberRole.lead
        )
        created.append(f"project {PROJECT}")
    return created


def provision_logins(session: Session, credentials_file: Path) -> dict[str, Any]:
    """Give every demo user a password and a TOTP secret, kept in a 0600 JSON file.

    An existing file is reused, so a second `make demo` keeps the same logins.
    """
    if credentials_file.exists():
        return dict(json.loads(credentials_file.read_text()))
    logins: dict[str, Any] = {}
    for person in DEMO_USERS:
        password = "-".join(secrets.choice(_WORDS) for _ in range(4))
        credentials.set_password(session, actor=ACTOR, username=person.username, password=password)
        secret = credentials.enrol_totp(session, actor=ACTOR, username=person.username)
        logins[person.username] = {
            "full_name": person.full_name,
            "roles": sorted(r.value for r in person.roles),
            "password": password,
            "totp_secret": secret,
            "otpauth_uri": credentials.provisioning_uri(person.username, secret),
        }
    credentials_file.parent.mkdir(parents=True, exist_ok=True)
    credentials_file.touch(mode=0o600)
    credentials_file.write_text(json.dumps({"users": logins}, indent=2))
    return {"users": logins}


def use_image(session: Session, reference: str, digest: str, labels: dict[str, str]) -> None:
    """Record the freshly built image, approve it as the demo admin, and put the project on it."""
    image = images.record_image(
        session, actor=ACTOR, name=reference.rsplit(":", 1)[0], tag=reference.rsplit(":", 1)[1],
        digest=digest, labels=labels,
    )  # fmt: skip
    if not image.approved:
        images.approve_image(session, approver="adam", reference=reference)
    project = projects.get_project(session, PROJECT)
    if project.image is None or project.image.reference != reference:
        projects.set_image(session, actor=ACTOR, slug=PROJECT, image_ref=reference)


# A small word list for memorable demo passwords (four words: about 40 bits, demo only).
_WORDS = (
    "anchor", "binder", "canal", "dossier", "ember", "fjord", "gavel", "harbour", "island",
    "jury", "kettle", "ledger", "meadow", "notary", "orchard", "parcel", "quarry", "river",
    "statute", "tulip", "umber", "verdict", "willow", "yonder", "zephyr", "beacon", "cobalt",
    "dune", "estuary", "ferry", "granite", "heron",
)  # fmt: skip
