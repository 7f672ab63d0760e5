"""The landing page: what the signed-in user can do here; and, for anyone, the public key
that signs this installation's releases and audit anchors (trenv/signing.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from trenv import signing
from trenv.web.deps import CurrentUser, DbSession
from trenv.web.pages.admin.common import controlled_suppliers, is_governance
from trenv.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: CurrentUser, session: DbSession) -> HTMLResponse:
    # A supplier's data controller holds no hub scope of their own; their door to the
    # grants waiting for them is this card.
    controller = not is_governance(user) and bool(controlled_suppliers(session, user.name))
    identity, _ = _identity(request)
    return render(
        request, "home.html", {"title": "trenv", "controller": controller, "identity": identity}
    )


def _identity(request: Request) -> tuple[signing.PublicIdentity | None, str | None]:
    """The published identity, or None and why not (never reads the private key)."""
    try:
        return signing.read_identity(request.app.state.settings), None
    except signing.SigningKeyError as error:
        return None, str(error)


def _retired(request: Request) -> list[signing.RetiredKey]:
    """The keys this installation signed with before a rotation (none when unreadable)."""
    try:
        return list(signing.retired_keys(request.app.state.settings).values())
    except signing.SigningKeyError:
        return []


@router.get("/signing-key", response_class=HTMLResponse)
def signing_key(request: Request) -> HTMLResponse:
    """Public, no login: whoever received a bundle or an audit anchor checks it with this key."""
    identity, problem = _identity(request)
    return render(
        request,
        "signing_key.html",
        {
            "title": "Release signing key",
            "identity": identity,
            "problem": problem,
            "retired": _retired(request),
        },
    )


@router.get("/signing-key.json")
def signing_key_json(request: Request) -> JSONResponse:
    """The same, as ``signing.pub.json`` (what `trenv airlock verify --key FILE` reads)."""
    identity, problem = _identity(request)
    if identity is None:
        return JSONResponse(
            {"problem": problem or "this installation has no signing key yet.",
             "fix": "The administrator runs `trenv init`."},
            status_code=404,
        )  # fmt: skip
    retired = _retired(request)
    extra = {"retired": [r.as_record() for r in retired]} if retired else {}
    return JSONResponse(identity.as_record() | extra)
