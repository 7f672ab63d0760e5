"""Notebook images: digests, what they contain, approval and retirement."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from trenv.admin.image_contents import contents
from trenv.errors import NotFound
from trenv.registry import images
from trenv.store.models import Image
from trenv.web.deps import Admin, AppSettings, DbSession
from trenv.web.flash import act, page, url
from trenv.web.pages.admin.common import Governance, is_admin
from trenv.web.pages.admin.forms import ReasonForm

router = APIRouter(include_in_schema=False)


def _image(session: Session, image_id: int) -> Image:
    image = session.get(Image, image_id)
    if image is None:
        raise NotFound(f"no image #{image_id}.", "See the list of images.")
    return image


@router.get("/admin/images", response_class=HTMLResponse)
def image_list(request: Request, user: Governance, session: DbSession) -> Response:
    rows = [(i, images.projects_on_image(session, i)) for i in images.list_images(session)]
    return page(
        request,
        "admin/images.html",
        {"title": "Notebook images", "rows": rows, "can_edit": is_admin(user)},
    )


@router.get("/admin/images/{image_id}", response_class=HTMLResponse)
def image_page(
    request: Request, image_id: int, user: Governance, session: DbSession, settings: AppSettings
) -> Response:
    image = _image(session, image_id)
    return page(
        request,
        "admin/image.html",
        {
            "title": f"Image {image.reference}",
            "image": image,
            "projects": images.projects_on_image(session, image),
            "contents": contents(settings, image),
            "can_edit": is_admin(user),
        },
    )


@router.post("/admin/images/{image_id}/approve")
def image_approve(request: Request, image_id: int, user: Admin, session: DbSession) -> Response:
    back = url(request, f"admin/images/{image_id}")

    def action() -> str:
        reference = _image(session, image_id).reference
        images.approve_image(session, approver=user.name, reference=reference)
        return f"Image {reference} approved: projects may run on it."

    return act(request, session, action, back, back)


@router.post("/admin/images/{image_id}/retire")
def image_retire(
    request: Request,
    image_id: int,
    user: Admin,
    session: DbSession,
    form: Annotated[ReasonForm, Form()],
) -> Response:
    back = url(request, f"admin/images/{image_id}")

    def action() -> str:
        reference = _image(session, image_id).reference
        image = images.retire_image(
            session, actor=user.name, reference=reference, reason=form.reason
        )
        moving = [p.slug for p in images.projects_on_image(session, image)]
        return f"Image {reference} retired." + (
            f" Must move to another image: {', '.join(moving)}." if moving else ""
        )

    return act(request, session, action, back, back)
