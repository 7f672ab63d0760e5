"""Suppliers and their datasets: versions, codebooks and linkage reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from trenv.registry import datasets, organisations, users
from trenv.store.models import Dataset, Grant
from trenv.vault.service import LINKAGE_REPORT_KEY, link_summary
from trenv.web.deps import Admin, DbSession
from trenv.web.flash import act, page, url
from trenv.web.pages.admin.common import Governance, is_admin
from trenv.web.pages.admin.forms import ControllerForm, OrganisationForm

router = APIRouter(include_in_schema=False)


@router.get("/admin/data", response_class=HTMLResponse)
def data_page(request: Request, user: Governance, session: DbSession) -> Response:
    by_name: dict[str, list[Dataset]] = {}
    for dataset in datasets.list_datasets(session):
        by_name.setdefault(dataset.name, []).append(dataset)
    return page(
        request,
        "admin/data.html",
        {
            "title": "Suppliers and datasets",
            "organisations": organisations.list_organisations(session),
            "datasets": by_name,
            "people": [u.username for u in users.list_users(session) if u.active],
            "can_edit": is_admin(user),
        },
    )


@router.post("/admin/data/organisations")
def organisation_add(
    request: Request, user: Admin, session: DbSession, form: Annotated[OrganisationForm, Form()]
) -> Response:
    back = url(request, "admin/data")

    def action() -> str:
        organisations.add_organisation(session, actor=user.name, slug=form.slug, name=form.name)
        return f"Organisation {form.slug} added."

    return act(request, session, action, back, back)


@router.post("/admin/data/controllers")
def controller_add(
    request: Request, user: Admin, session: DbSession, form: Annotated[ControllerForm, Form()]
) -> Response:
    back = url(request, "admin/data")

    def action() -> str:
        slug, name = form.organisation, form.username
        organisations.add_controller(session, actor=user.name, slug=slug, username=name)
        return f"{name} is a data controller of {slug}: they approve grants of its data."

    return act(request, session, action, back, back)


def _linkage(dataset: Dataset) -> dict[str, Any] | None:
    """The linkage report's per-source summary (match rates, precision, recall) if any."""
    report = dataset.codebook.get(LINKAGE_REPORT_KEY)
    if not isinstance(report, str):
        return None
    path = Path(report)
    try:
        sources = link_summary(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return {"path": report, "missing": True, "sources": {}}
    return {"path": report, "missing": False, "sources": sources}


@router.get("/admin/data/datasets/{reference}", response_class=HTMLResponse)
def dataset_page(
    request: Request, reference: str, user: Governance, session: DbSession
) -> Response:
    dataset = datasets.get_dataset(session, reference)
    versions = session.scalars(
        select(Dataset).where(Dataset.name == dataset.name).order_by(Dataset.created_at.desc())
    )
    columns = dataset.codebook.get("columns")
    codebook = (
        list(columns.items())
        if isinstance(columns, dict)
        else [
            (c.get("name", ""), c) if isinstance(c, dict) else (str(c), {}) for c in columns or []
        ]
    )
    on_dataset = session.scalars(
        select(Grant).where(Grant.dataset_id == dataset.id).order_by(Grant.id)
    )
    return page(
        request,
        "admin/dataset.html",
        {
            "title": f"Dataset {dataset.reference}",
            "dataset": dataset,
            "versions": list(versions),
            "codebook": codebook,
            "other_keys": {
                k: v
                for k, v in dataset.codebook.items()
                if k not in ("columns", LINKAGE_REPORT_KEY)
            },
            "linkage": _linkage(dataset),
            "grants": list(on_dataset),
        },
    )
